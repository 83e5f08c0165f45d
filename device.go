package accessproxy

import (
	"net/http"
	"strings"
	"unicode/utf8"
)

// A session records the device it was opened on as Strapi 5 records its own: the login body's
// `deviceId`, and a `deviceName` ("Chrome on macOS") built from the User-Agent by the rules of
// @strapi/utils' user-agent.js, by hand (checked against Strapi's code by TestDeviceNameParity).

// maxUALength is Strapi's MAX_UA_LENGTH: only this much of the header is read. Node reads header
// bytes as latin1, one character each, so Strapi's 1024 characters are 1024 bytes here.
const maxUALength = 1024

// maxDeviceID bounds a login's deviceId (the store's limit too).
const maxDeviceID = 255

// loginDeviceID reads `deviceId` as Strapi's extractDeviceId does: a non-empty string, else none.
// ok is false for one the store could not keep (too long, control characters, bad UTF-8): the
// login is refused before Strapi sees it.
func loginDeviceID(body map[string]interface{}) (id string, ok bool) {
	id, _ = body["deviceId"].(string)
	if id == "" {
		return "", true
	}
	if len(id) > maxDeviceID || !utf8.ValidString(id) {
		return "", false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] == 0x7f {
			return "", false
		}
	}
	return id, true
}

// deviceName is Strapi's getDeviceName(user-agent): "Browser on OS", "Browser", "OS" or "".
func deviceName(req *http.Request) string {
	ua := req.Header.Get("User-Agent")
	if len(ua) > maxUALength {
		ua = ua[:maxUALength]
	}
	browser, os := uaBrowser(ua), uaOS(ua)
	switch {
	case browser != "" && os != "":
		return browser + " on " + os
	case browser != "":
		return browser
	}
	return os
}

// uaBrowser is detectBrowser: the first of Strapi's tokens, in Strapi's order, found at a word
// start and followed by "/". (Strapi's first Safari pattern implies its second, so "Safari/"
// decides alone.)
func uaBrowser(ua string) string {
	switch {
	case uaToken(ua, "Edg/", "Edge/", "EdgA/", "EdgiOS/"):
		return "Edge"
	case uaToken(ua, "OPR/", "Opera/"):
		return "Opera"
	case uaToken(ua, "SamsungBrowser/"):
		return "Samsung Internet"
	case uaToken(ua, "Vivaldi/"):
		return "Vivaldi"
	case uaToken(ua, "YaBrowser/", "Yowser/"):
		return "Yandex Browser"
	case uaToken(ua, "Brave/"):
		return "Brave"
	case uaToken(ua, "Firefox/", "FxiOS/"):
		return "Firefox"
	case uaToken(ua, "Chrome/", "CriOS/", "Chromium/"):
		return "Chrome"
	case uaToken(ua, "Safari/"):
		return "Safari"
	}
	return ""
}

// uaOS is detectOS: whole words (\b on both sides), in Strapi's order.
func uaOS(ua string) string {
	switch {
	case uaWord(ua, "Windows NT"):
		return "Windows"
	case uaWord(ua, "iPhone") || uaWord(ua, "iPad") || uaWord(ua, "iPod"):
		return "iOS"
	case uaWord(ua, "Android"):
		return "Android"
	case uaWord(ua, "Macintosh") || uaWord(ua, "Mac OS X"):
		return "macOS"
	case uaWord(ua, "CrOS"):
		return "ChromeOS"
	case uaWord(ua, "Linux"):
		return "Linux"
	}
	return ""
}

// uaToken reports whether one of tokens occurs in ua at a word boundary (JavaScript's \b before
// a word character: the previous byte is no ASCII word character).
func uaToken(ua string, tokens ...string) bool {
	for _, t := range tokens {
		for from := 0; ; {
			i := strings.Index(ua[from:], t)
			if i < 0 {
				break
			}
			i += from
			if i == 0 || !wordByte(ua[i-1]) {
				return true
			}
			from = i + 1
		}
	}
	return false
}

// uaWord is uaToken for a word that must also end at a word boundary.
func uaWord(ua, w string) bool {
	for from := 0; ; {
		i := strings.Index(ua[from:], w)
		if i < 0 {
			return false
		}
		i += from
		end := i + len(w)
		if (i == 0 || !wordByte(ua[i-1])) && (end == len(ua) || !wordByte(ua[end])) {
			return true
		}
		from = i + 1
	}
}

// wordByte is JavaScript's \w without the u flag: ASCII letters, digits and underscore.
func wordByte(c byte) bool {
	return c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

package accessproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// A login answer is rewritten member by member, so everything but the credentials goes out
// exactly as Strapi wrote it, in Strapi's order.

var errNotObject = errors.New("not a JSON object")

// jsonMember is one top-level member of a JSON object; its value is kept byte for byte.
type jsonMember struct {
	key string
	raw json.RawMessage
}

// splitObject reads a JSON object into its top-level members, in order.
func splitObject(body []byte) ([]jsonMember, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return nil, errNotObject
	}
	var out []jsonMember
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, ok := kt.(string)
		if !ok {
			return nil, errNotObject
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		out = append(out, jsonMember{key: k, raw: raw})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errNotObject
	}
	return out, nil
}

// lastString returns the value of the last member named key when it is a JSON string (JSON.parse
// keeps the last of duplicate keys, so that is the one Strapi's clients would see).
func lastString(members []jsonMember, key string) (string, bool) {
	value, found := "", false
	for _, mem := range members {
		if mem.key == key {
			found = true
			value = ""
			_ = json.Unmarshal(mem.raw, &value)
		}
	}
	return value, found
}

// lastObject returns the last member named key decoded as an object (nil if it is not one).
func lastObject(members []jsonMember, key string) map[string]interface{} {
	var obj map[string]interface{}
	for _, mem := range members {
		if mem.key == key {
			obj = nil
			dec := json.NewDecoder(bytes.NewReader(mem.raw))
			dec.UseNumber()
			_ = dec.Decode(&obj)
		}
	}
	return obj
}

// rewriteCredentials puts the proxy token in every `jwt` member, and the proxy's refresh token
// (or nothing, when refresh is "") in place of Strapi's `refreshToken`.
func rewriteCredentials(members []jsonMember, token, refresh string) ([]byte, error) {
	tokenRaw, err := json.Marshal(token)
	if err != nil {
		return nil, err
	}
	var refreshRaw []byte
	if refresh != "" {
		if refreshRaw, err = json.Marshal(refresh); err != nil {
			return nil, err
		}
	}
	var b bytes.Buffer
	b.WriteByte('{')
	n := 0
	write := func(key string, raw []byte) {
		if n > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(raw)
		n++
	}
	for _, mem := range members {
		switch mem.key {
		case "jwt":
			write(mem.key, tokenRaw)
		case "refreshToken":
			if refreshRaw != nil {
				write(mem.key, refreshRaw)
				refreshRaw = nil
			}
		default:
			write(mem.key, mem.raw)
		}
	}
	if refreshRaw != nil {
		write("refreshToken", refreshRaw)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

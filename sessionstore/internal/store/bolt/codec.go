package bolt

import (
	"encoding/binary"
	"errors"
	"sort"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// Records are stored in a compact binary form (a version byte, then varints and length-prefixed
// bytes): decoding it is several times cheaper than JSON on the GET/touch hot path. A new version
// appends fields; records of every older version still decode (the new fields read as zero), so a
// file written before an upgrade needs no migration.
const (
	sessionV1 byte = 1
	sessionV2 byte = 2 // + revalidatedAt
	sessionV3 byte = 3 // + deviceId, deviceName
	sessionV4 byte = 4 // + loginAddr, lastAddr, rememberMe
	sessionV5 byte = 5 // + username
	familyV1  byte = 1
	familyV2  byte = 2 // + revalidatedAt
	familyV3  byte = 3 // + deviceId, deviceName
	familyV4  byte = 4 // + loginAddr, rememberMe
	familyV5  byte = 5 // + username
	tokenV1   byte = 1
	tokenV2   byte = 2 // + userId
	tokenV3   byte = 3 // + spentAt
	counterV1 byte = 1
)

var errCorrupt = errors.New("bolt: corrupt record")

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendString(b []byte, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendStrings(b []byte, v []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	for _, s := range v {
		b = appendString(b, s)
	}
	return b
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// decoder reads what the append helpers wrote; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err, d.b = errCorrupt, nil }

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) raw() []byte {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// bytes copies: bolt's values are only valid inside their transaction.
func (d *decoder) bytes() []byte {
	v := d.raw()
	if len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

func (d *decoder) string() string { return string(d.raw()) }

func (d *decoder) strings() []string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := make([]string, 0, n)
	for range n {
		v = append(v, d.string())
	}
	return v
}

func (d *decoder) bool() bool {
	if len(d.b) == 0 {
		d.fail()
		return false
	}
	v := d.b[0] != 0
	d.b = d.b[1:]
	return v
}

func (d *decoder) version(want byte) {
	if d.versionUpTo(want) != want {
		d.fail()
	}
}

// versionUpTo reads a version byte in [1, newest] and returns it.
func (d *decoder) versionUpTo(newest byte) byte {
	if len(d.b) == 0 || d.b[0] < 1 || d.b[0] > newest {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		return errCorrupt
	}
	return d.err
}

func encodeSession(s *store.Session) []byte {
	b := make([]byte, 0, 160+len(s.JWT)+len(s.Refresh)+len(s.DeviceID)+len(s.DeviceName)+len(s.LoginAddr)+len(s.LastAddr)+32*len(s.HostsLastSeen))
	b = append(b, sessionV5)
	b = appendString(b, s.ID)
	b = appendString(b, s.UserID)
	b = appendString(b, s.FamilyID)
	b = appendString(b, s.Host)
	b = appendStrings(b, s.Audience)
	b = appendBytes(b, s.JWT)
	b = appendBytes(b, s.Refresh)
	b = binary.AppendVarint(b, s.UpstreamVersion)
	b = binary.AppendVarint(b, s.CreatedAt)
	b = binary.AppendVarint(b, s.LastSeenAt)
	b = binary.AppendVarint(b, s.IdleTimeoutMs)
	b = appendBool(b, s.Sliding)
	b = binary.AppendVarint(b, s.ExpiresAt)
	b = binary.AppendVarint(b, s.AbsoluteExpiresAt)
	// Sorted so that equal sessions encode to equal bytes.
	hosts := make([]string, 0, len(s.HostsLastSeen))
	for h := range s.HostsLastSeen {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	b = binary.AppendUvarint(b, uint64(len(hosts)))
	for _, h := range hosts {
		b = appendString(b, h)
		b = binary.AppendVarint(b, s.HostsLastSeen[h])
	}
	b = binary.AppendVarint(b, s.RevalidatedAt)
	b = appendString(b, s.DeviceID)
	b = appendString(b, s.DeviceName)
	b = appendString(b, s.LoginAddr)
	b = appendString(b, s.LastAddr)
	b = appendBool(b, s.RememberMe)
	return appendString(b, s.Username)
}

func decodeSession(b []byte) (*store.Session, error) {
	d := decoder{b: b}
	v := d.versionUpTo(sessionV5)
	s := &store.Session{
		ID:                d.string(),
		UserID:            d.string(),
		FamilyID:          d.string(),
		Host:              d.string(),
		Audience:          d.strings(),
		JWT:               d.bytes(),
		Refresh:           d.bytes(),
		UpstreamVersion:   d.varint(),
		CreatedAt:         d.varint(),
		LastSeenAt:        d.varint(),
		IdleTimeoutMs:     d.varint(),
		Sliding:           d.bool(),
		ExpiresAt:         d.varint(),
		AbsoluteExpiresAt: d.varint(),
	}
	n := d.uvarint()
	if d.err == nil && n <= uint64(len(d.b)) {
		s.HostsLastSeen = make(map[string]int64, n)
		for range n {
			h := d.string()
			s.HostsLastSeen[h] = d.varint()
		}
	} else {
		d.fail()
	}
	if v >= sessionV2 {
		s.RevalidatedAt = d.varint()
	}
	if v >= sessionV3 {
		s.DeviceID, s.DeviceName = d.string(), d.string()
	}
	if v >= sessionV4 {
		s.LoginAddr, s.LastAddr, s.RememberMe = d.string(), d.string(), d.bool()
	}
	if v >= sessionV5 {
		s.Username = d.string()
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	return s, nil
}

func encodeFamily(f *store.Family) []byte {
	b := make([]byte, 0, 128+len(f.JWT)+len(f.Refresh)+len(f.DeviceID)+len(f.DeviceName)+len(f.LoginAddr))
	b = append(b, familyV5)
	b = appendString(b, f.ID)
	b = appendString(b, f.UserID)
	b = appendString(b, f.Host)
	b = appendStrings(b, f.Audience)
	b = appendBytes(b, f.JWT)
	b = appendBytes(b, f.Refresh)
	b = binary.AppendVarint(b, f.CreatedAt)
	b = binary.AppendVarint(b, f.ExpiresAt)
	b = binary.AppendVarint(b, f.RevalidatedAt)
	b = appendString(b, f.DeviceID)
	b = appendString(b, f.DeviceName)
	b = appendString(b, f.LoginAddr)
	b = appendBool(b, f.RememberMe)
	return appendString(b, f.Username)
}

func decodeFamily(b []byte) (*store.Family, error) {
	d := decoder{b: b}
	v := d.versionUpTo(familyV5)
	f := &store.Family{
		ID:        d.string(),
		UserID:    d.string(),
		Host:      d.string(),
		Audience:  d.strings(),
		JWT:       d.bytes(),
		Refresh:   d.bytes(),
		CreatedAt: d.varint(),
		ExpiresAt: d.varint(),
	}
	if v >= familyV2 {
		f.RevalidatedAt = d.varint()
	}
	if v >= familyV3 {
		f.DeviceID, f.DeviceName = d.string(), d.string()
	}
	if v >= familyV4 {
		f.LoginAddr, f.RememberMe = d.string(), d.bool()
	}
	if v >= familyV5 {
		f.Username = d.string()
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	return f, nil
}

func encodeToken(t *store.RefreshToken) []byte {
	b := make([]byte, 0, 128)
	b = append(b, tokenV3)
	b = appendString(b, t.Hash)
	b = appendString(b, t.FamilyID)
	b = appendString(b, t.SessionID)
	b = binary.AppendVarint(b, t.ExpiresAt)
	b = appendBool(b, t.Spent)
	b = appendString(b, t.UserID)
	return binary.AppendVarint(b, t.SpentAt)
}

func decodeToken(b []byte) (*store.RefreshToken, error) {
	d := decoder{b: b}
	v := d.versionUpTo(tokenV3)
	t := &store.RefreshToken{
		Hash:      d.string(),
		FamilyID:  d.string(),
		SessionID: d.string(),
		ExpiresAt: d.varint(),
		Spent:     d.bool(),
	}
	if v >= tokenV2 {
		t.UserID = d.string()
	}
	if v >= tokenV3 {
		t.SpentAt = d.varint()
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	return t, nil
}

func encodeCounter(c store.Counter) []byte {
	b := make([]byte, 0, 21)
	b = append(b, counterV1)
	b = binary.AppendVarint(b, c.Count)
	return binary.AppendVarint(b, c.ResetAt)
}

func decodeCounter(b []byte) (store.Counter, error) {
	d := decoder{b: b}
	d.version(counterV1)
	c := store.Counter{Count: d.varint(), ResetAt: d.varint()}
	return c, d.done()
}

const (
	changeV1 byte = 1
	changeV2 byte = 2 // + upstreamVersion, revalidatedAt
)

// encodeChange stores everything but the sequence number, which is the key.
func encodeChange(c store.Change) []byte {
	b := []byte{changeV2}
	b = appendString(b, c.Kind)
	b = appendStrings(b, c.SessionIDs)
	b = appendString(b, c.UserID)
	b = binary.AppendVarint(b, c.At)
	b = binary.AppendVarint(b, c.UpstreamVersion)
	return binary.AppendVarint(b, c.RevalidatedAt)
}

func decodeChange(seq int64, b []byte) (store.Change, error) {
	d := decoder{b: b}
	v := d.versionUpTo(changeV2)
	c := store.Change{Seq: seq, Kind: d.string(), SessionIDs: d.strings(), UserID: d.string(), At: d.varint()}
	if v >= changeV2 {
		c.UpstreamVersion, c.RevalidatedAt = d.varint(), d.varint()
	}
	if c.SessionIDs == nil {
		c.SessionIDs = []string{}
	}
	return c, d.done()
}

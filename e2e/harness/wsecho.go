package harness

// A websocket echo backend and a websocket client, by hand (RFC 6455: the handshake and
// single-frame messages, enough for the tests; no dependency).

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// WebSocket opcodes.
const (
	WSText  = 0x1
	WSClose = 0x8
	WSPing  = 0x9
	WSPong  = 0xA
)

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// WSEcho accepts websocket upgrades and echoes every message. Anything else gets 426.
type WSEcho struct {
	URL string

	srv *http.Server
	mu  sync.Mutex
	// auth is the Authorization header of every accepted upgrade, in order.
	auth  []string
	conns map[net.Conn]bool
}

// StartWSEcho starts the echo backend on a free port of 127.0.0.1; it is closed with the env.
func StartWSEcho(env *Env) (*WSEcho, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &WSEcho{URL: "http://" + ln.Addr().String(), conns: map[net.Conn]bool{}}
	e.srv = &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.srv.Serve(ln) }()
	env.OnClose(e.Close)
	return e, nil
}

// Close stops the server and every connection it accepted.
func (e *WSEcho) Close() {
	_ = e.srv.Close()
	e.mu.Lock()
	for c := range e.conns {
		_ = c.Close()
	}
	e.mu.Unlock()
}

// Upgrades returns the Authorization header of every upgrade accepted so far.
func (e *WSEcho) Upgrades() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.auth...)
}

// Open is how many accepted connections are still open on the backend's side.
func (e *WSEcho) Open() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.conns)
}

func (e *WSEcho) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !headerHasToken(r.Header, "Connection", "upgrade") || key == "" {
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "websocket echo: upgrade required", http.StatusUpgradeRequired)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "no hijacker", http.StatusInternalServerError)
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	e.mu.Lock()
	e.auth = append(e.auth, r.Header.Get("Authorization"))
	e.conns[conn] = true
	e.mu.Unlock()
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + wsAccept(key) + "\r\n\r\n")
	if brw.Flush() != nil {
		e.drop(conn)
		return
	}
	go e.echo(conn, brw.Reader)
}

func (e *WSEcho) drop(conn net.Conn) {
	_ = conn.Close()
	e.mu.Lock()
	delete(e.conns, conn)
	e.mu.Unlock()
}

// echo sends every data frame back, answers pings, and returns a close frame before closing.
func (e *WSEcho) echo(conn net.Conn, br *bufio.Reader) {
	defer e.drop(conn)
	for {
		op, payload, err := readFrame(br)
		if err != nil {
			return
		}
		switch op {
		case WSClose:
			_ = writeFrame(conn, WSClose, payload, false)
			return
		case WSPing:
			err = writeFrame(conn, WSPong, payload, false)
		case WSPong:
		default:
			err = writeFrame(conn, op, payload, false)
		}
		if err != nil {
			return
		}
	}
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h[http.CanonicalHeaderKey(name)] {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// writeFrame writes one final frame; clients mask (RFC 6455 5.3), servers do not.
func writeFrame(w io.Writer, op byte, payload []byte, mask bool) error {
	hdr := []byte{0x80 | op, 0}
	n := len(payload)
	switch {
	case n < 126:
		hdr[1] = byte(n)
	case n <= 0xFFFF:
		hdr[1] = 126
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr[1] = 127
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	body := payload
	if mask {
		hdr[1] |= 0x80
		var key [4]byte
		if _, err := rand.Read(key[:]); err != nil {
			return err
		}
		hdr = append(hdr, key[:]...)
		body = make([]byte, n)
		for i := range payload {
			body[i] = payload[i] ^ key[i%4]
		}
	}
	_, err := w.Write(append(hdr, body...))
	return err
}

// readFrame reads one frame (unmasking it if masked) and returns its opcode and payload.
func readFrame(br *bufio.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	op, masked := h[0]&0x0F, h[1]&0x80 != 0
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<20 {
		return 0, nil, fmt.Errorf("websocket frame of %d bytes", n)
	}
	var key [4]byte
	if masked {
		if _, err := io.ReadFull(br, key[:]); err != nil {
			return 0, nil, err
		}
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return op, payload, nil
}

// WSConn is the client side of a websocket.
type WSConn struct {
	conn net.Conn
	br   *bufio.Reader
}

// ErrWSClosed is what ReadMessage returns once the peer closed the connection (end of stream,
// a reset, or a close frame).
var ErrWSClosed = errors.New("websocket closed by the peer")

// DialWS opens a websocket to path on host through base (http://127.0.0.1:port), with
// "Authorization: Bearer token" when token is not empty. A refused upgrade returns no connection
// and the response (its status, headers and body).
func DialWS(base, host, path, token string) (*WSConn, *Response, error) {
	addr := strings.TrimPrefix(base, "http://")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	var k [16]byte
	if _, err := rand.Read(k[:]); err != nil {
		conn.Close()
		return nil, nil, err
	}
	key := base64.StdEncoding.EncodeToString(k[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n"
	if token != "" {
		req += "Authorization: Bearer " + token + "\r\n"
	}
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		conn.Close()
		return nil, nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	r := &Response{Status: resp.StatusCode, Header: resp.Header}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		r.Body, _ = io.ReadAll(resp.Body)
		conn.Close()
		return nil, r, nil
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != wsAccept(key) {
		conn.Close()
		return nil, r, fmt.Errorf("Sec-WebSocket-Accept %q, want %q", got, wsAccept(key))
	}
	_ = conn.SetDeadline(time.Time{})
	return &WSConn{conn: conn, br: br}, r, nil
}

// WriteText sends one text message.
func (c *WSConn) WriteText(msg string) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return writeFrame(c.conn, WSText, []byte(msg), true)
}

// ReadMessage reads the next data message before deadline, answering pings. It returns
// ErrWSClosed once the peer closed the connection, and a net.Error with Timeout() at the deadline.
func (c *WSConn) ReadMessage(deadline time.Time) (string, error) {
	_ = c.conn.SetReadDeadline(deadline)
	for {
		op, payload, err := readFrame(c.br)
		var ne net.Error
		switch {
		case err == nil:
		case errors.As(err, &ne) && ne.Timeout():
			return "", err
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed), strings.Contains(err.Error(), "reset by peer"):
			return "", ErrWSClosed
		default:
			return "", err
		}
		switch op {
		case WSClose:
			return "", ErrWSClosed
		case WSPing:
			if err := writeFrame(c.conn, WSPong, payload, true); err != nil {
				return "", err
			}
		case WSPong:
		default:
			return string(payload), nil
		}
	}
}

// Echo sends msg and expects it back within timeout.
func (c *WSConn) Echo(msg string, timeout time.Duration) error {
	if err := c.WriteText(msg); err != nil {
		return err
	}
	got, err := c.ReadMessage(time.Now().Add(timeout))
	if err != nil {
		return err
	}
	if got != msg {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

// Close sends a close frame and closes the connection.
func (c *WSConn) Close() {
	_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_ = writeFrame(c.conn, WSClose, nil, true)
	_ = c.conn.Close()
}

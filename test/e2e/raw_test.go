package e2e

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"
)

// rawConn is a client connection that writes bytes exactly as given, for
// requests that net/http's client would refuse or normalise.
type rawConn struct {
	net.Conn
	r *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	return &rawConn{Conn: c, r: bufio.NewReader(c)}
}

// roundTrip writes raw and reads one response (body included).
func (c *rawConn) roundTrip(t testing.TB, raw string) *http.Response {
	t.Helper()
	if _, err := c.Write([]byte(raw)); err != nil {
		t.Fatalf("write: %v", err)
	}
	return c.read(t)
}

func (c *rawConn) read(t testing.TB) *http.Response {
	t.Helper()
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return resp
}

// closed reports whether the server closed the connection (EOF) before
// deadline, without sending anything more.
func (c *rawConn) closed(within time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(within))
	_, err := c.r.ReadByte()
	return err != nil && !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

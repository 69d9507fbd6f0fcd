package redisserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// commandTimeout bounds one Do when ctx ends no sooner.
const commandTimeout = 2 * time.Second

// Ping returns nil when the server answers PING with PONG. A killed server
// refuses the connection; a paused one lets it time out.
func (s *Server) Ping(ctx context.Context) error {
	reply, err := s.Do(ctx, "PING")
	if err != nil {
		return err
	}
	if len(reply) != 1 || reply[0] != "PONG" {
		return fmt.Errorf("PING answered %q, want PONG", reply)
	}
	return nil
}

// Do runs one command on a new connection, after AUTH when the server has a
// password, and returns the reply: a simple string, integer or bulk string
// as one element, an array of those as its elements. A Redis error reply
// is an error. It is for looking at the server (PING, KEYS, DBSIZE), not
// for load.
func (s *Server) Do(ctx context.Context, args ...string) ([]string, error) {
	return do(ctx, s.addr, s.password, args)
}

func do(ctx context.Context, addr, password string, args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, errors.New("redis-server: no command")
	}
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	r := bufio.NewReader(c)
	if password != "" {
		if _, err := roundTrip(c, r, "AUTH", password); err != nil {
			return nil, fmt.Errorf("AUTH: %w", err)
		}
	}
	reply, err := roundTrip(c, r, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", args[0], err)
	}
	return reply, nil
}

// roundTrip sends args as a RESP array and reads the reply.
func roundTrip(w io.Writer, r *bufio.Reader, args ...string) ([]string, error) {
	var req bytes.Buffer
	fmt.Fprintf(&req, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := w.Write(req.Bytes()); err != nil {
		return nil, err
	}
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "*") {
		v, err := scalar(r, line)
		if err != nil {
			return nil, err
		}
		return []string{v}, nil
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil {
		return nil, fmt.Errorf("bad array header %q", line)
	}
	reply := make([]string, 0, max(n, 0))
	for range n {
		line, err := readLine(r)
		if err != nil {
			return nil, err
		}
		v, err := scalar(r, line)
		if err != nil {
			return nil, err
		}
		reply = append(reply, v)
	}
	return reply, nil
}

func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty RESP line")
	}
	return line, nil
}

// scalar decodes the simple string, error, integer or bulk string that
// starts with line; a nil bulk string is "".
func scalar(r *bufio.Reader, line string) (string, error) {
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("redis-server answered: %s", line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("bad bulk header %q", line)
		}
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("unexpected RESP reply %q", line)
}

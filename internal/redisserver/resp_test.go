package redisserver

import (
	"bufio"
	"net"
	"slices"
	"strings"
	"testing"
)

// answer serves one connection on a loopback port: it reads a command of
// one word (three RESP lines) and writes reply, as a Redis that says
// something else would.
func answer(t *testing.T, reply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for range 3 {
			_, _ = r.ReadString('\n')
		}
		_, _ = c.Write([]byte(reply))
	}()
	return ln.Addr().String()
}

func TestPingRefusesOtherAnswers(t *testing.T) {
	s := &Server{addr: answer(t, "-LOADING Redis is loading the dataset in memory\r\n")}
	if err := s.Ping(t.Context()); err == nil || !strings.Contains(err.Error(), "LOADING") {
		t.Errorf("Ping() = %v, want an error quoting the answer", err)
	}
	s = &Server{addr: answer(t, "+OK\r\n")}
	if err := s.Ping(t.Context()); err == nil || !strings.Contains(err.Error(), "OK") {
		t.Errorf("Ping() = %v, want an error quoting the answer", err)
	}
}

func TestDoReplies(t *testing.T) {
	for _, tc := range []struct {
		name, reply string
		want        []string
	}{
		{"simple string", "+PONG\r\n", []string{"PONG"}},
		{"integer", ":42\r\n", []string{"42"}},
		{"bulk string", "$5\r\nhello\r\n", []string{"hello"}},
		{"nil bulk string", "$-1\r\n", []string{""}},
		{"array", "*3\r\n$3\r\nfoo\r\n:7\r\n$-1\r\n", []string{"foo", "7", ""}},
		{"empty array", "*0\r\n", []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{addr: answer(t, tc.reply)}
			got, err := s.Do(t.Context(), "X")
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("Do() = %q, %v, want %q", got, err, tc.want)
			}
		})
	}
	for _, reply := range []string{"-ERR unknown command\r\n", "*x\r\n", "$x\r\n", "?\r\n", "\r\n"} {
		s := &Server{addr: answer(t, reply)}
		if got, err := s.Do(t.Context(), "X"); err == nil {
			t.Errorf("Do() answered %q = %q, want an error", reply, got)
		}
	}
	if _, err := (&Server{}).Do(t.Context()); err == nil {
		t.Errorf("Do() with no command = nil error, want one")
	}
}

package main

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestOrderEventsStream(t *testing.T) {
	srv := startAPI(t)
	resp, err := srv.Client().Get(srv.URL + "/orders/2/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got, want := resp.Header.Get("Content-Type"), "text/event-stream"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	var data []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			data = append(data, v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"order_id":"2","status":"created"}`,
		`{"order_id":"2","status":"paid"}`,
		`{"order_id":"2","status":"packed"}`,
		`{"order_id":"2","status":"shipped"}`,
	}
	if got := strings.Join(data, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("event data = %v, want %v", data, want)
	}
}

// TestOrderEventsFlushEachEvent reads the first event of a stream whose next
// event would come only after an hour: it arrives only if it was flushed.
func TestOrderEventsFlushEachEvent(t *testing.T) {
	srv := httptest.NewServer(accessLog(discardLogger(), newAPI(newOrderStore(), time.Hour, nil)))
	t.Cleanup(srv.Close)
	resp, err := srv.Client().Get(srv.URL + "/orders/1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want %d", resp.StatusCode, http.StatusOK)
	}
	r := bufio.NewReader(resp.Body)
	var event []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read first event: %v", err)
		}
		if line == "\n" {
			break
		}
		event = append(event, strings.TrimSuffix(line, "\n"))
	}
	want := []string{"id: 1", "event: status", `data: {"order_id":"1","status":"created"}`}
	if got := strings.Join(event, "|"); got != strings.Join(want, "|") {
		t.Errorf("first event = %q, want %q", event, want)
	}
}

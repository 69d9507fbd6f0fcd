package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestCreateOrder(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		wantStatus  int
		wantBody    string
	}{
		{name: "valid", contentType: "application/json", body: `{"customer":"carol","item":"widget","quantity":3}`, wantStatus: 201, wantBody: `"id":"4"`},
		{name: "json with charset", contentType: "application/json; charset=utf-8", body: `{"customer":"carol","item":"widget","quantity":1}`, wantStatus: 201, wantBody: `"status":"created"`},
		{name: "not json content type", contentType: "text/plain", body: `{"customer":"carol","item":"widget","quantity":3}`, wantStatus: 415, wantBody: "application/json"},
		{name: "no content type", contentType: "", body: `{}`, wantStatus: 415, wantBody: "application/json"},
		{name: "malformed json", contentType: "application/json", body: `{"customer":`, wantStatus: 400, wantBody: "one JSON object"},
		{name: "unknown field", contentType: "application/json", body: `{"customer":"c","item":"i","quantity":1,"admin":true}`, wantStatus: 400, wantBody: "one JSON object"},
		{name: "two objects", contentType: "application/json", body: `{"customer":"c","item":"i","quantity":1}{}`, wantStatus: 400, wantBody: "one JSON object"},
		{name: "array", contentType: "application/json", body: `[]`, wantStatus: 400, wantBody: "one JSON object"},
		{name: "missing customer", contentType: "application/json", body: `{"item":"i","quantity":1}`, wantStatus: 422, wantBody: "customer"},
		{name: "missing item", contentType: "application/json", body: `{"customer":"c","quantity":1}`, wantStatus: 422, wantBody: "item"},
		{name: "zero quantity", contentType: "application/json", body: `{"customer":"c","item":"i","quantity":0}`, wantStatus: 422, wantBody: "quantity"},
		{name: "too many", contentType: "application/json", body: `{"customer":"c","item":"i","quantity":1001}`, wantStatus: 422, wantBody: "quantity"},
		{name: "long item", contentType: "application/json", body: `{"customer":"c","item":"` + strings.Repeat("x", 101) + `","quantity":1}`, wantStatus: 422, wantBody: "item"},
		{name: "body over the limit", contentType: "application/json", body: `{"customer":"` + strings.Repeat("x", maxOrderBody) + `"}`, wantStatus: 413, wantBody: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startAPI(t)
			req, err := http.NewRequest("POST", srv.URL+"/orders", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", tt.contentType)
			status, body := send(t, srv, req)
			if status != tt.wantStatus {
				t.Errorf("POST /orders status = %d, want %d (body %q)", status, tt.wantStatus, body)
			}
			if !strings.Contains(body, tt.wantBody) {
				t.Errorf("POST /orders body = %q, want it to contain %q", body, tt.wantBody)
			}
		})
	}
}

func TestCreatedOrderCanBeRead(t *testing.T) {
	srv := startAPI(t)
	req, err := http.NewRequest("POST", srv.URL+"/orders", strings.NewReader(`{"customer":"dave","item":"bolt","quantity":7}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	location := resp.Header.Get("Location")
	if location != "/orders/4" {
		t.Fatalf("Location = %q, want %q", location, "/orders/4")
	}

	status, body := do(t, srv, "GET", location, "")
	if status != http.StatusOK {
		t.Fatalf("GET %s status = %d, want %d", location, status, http.StatusOK)
	}
	var got order
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("decode order: %v", err)
	}
	want := order{ID: "4", Customer: "dave", Item: "bolt", Quantity: 7, Status: "created"}
	if got != want {
		t.Errorf("GET %s = %+v, want %+v", location, got, want)
	}
}

func TestOrderStoreListIsNumericallySorted(t *testing.T) {
	s := newOrderStore()
	for range 10 {
		s.add(order{Customer: "c", Item: "i", Quantity: 1})
	}
	var ids []string
	for _, o := range s.list() {
		ids = append(ids, o.ID)
	}
	if got, want := strings.Join(ids, ","), "1,2,3,4,5,6,7,8,9,10,11,12,13"; got != want {
		t.Errorf("list ids = %v, want %v", got, want)
	}
}

func TestGetOrderNamesWhoItWasServedTo(t *testing.T) {
	tests := []struct {
		name    string
		subject string
		want    string
	}{
		{name: "subject from the gateway", subject: "alice", want: `"served_to":"alice"`},
		{name: "API key consumer", subject: "acme", want: `"served_to":"acme"`},
		{name: "no subject (not behind the gateway)", subject: "", want: `"status":"shipped"}`},
	}
	srv := startAPI(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", srv.URL+"/orders/1", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.subject != "" {
				req.Header.Set(subjectHeader, tt.subject)
			}
			status, body := send(t, srv, req)
			if status != http.StatusOK || !strings.Contains(body, tt.want) {
				t.Errorf("GET /orders/1 as %q = %d %q, want 200 with %s", tt.subject, status, body, tt.want)
			}
		})
	}
}

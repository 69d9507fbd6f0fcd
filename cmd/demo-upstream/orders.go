package main

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// maxOrderBody bounds the body of POST /orders; the demo gateway route has a
// smaller limit, so the upstream's own limit only matters without it.
const maxOrderBody = 64 << 10

// maxQuantity is the largest quantity one order may have.
const maxQuantity = 1000

// order is one order of the sample API.
type order struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
	Status   string `json:"status"`
}

// orderRequest is the body of POST /orders.
type orderRequest struct {
	Customer string `json:"customer"`
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
}

// validate reports the first problem with req, for a 422 answer.
func (req orderRequest) validate() error {
	switch {
	case req.Customer == "" || utf8.RuneCountInString(req.Customer) > 100:
		return errors.New("customer: required, at most 100 characters")
	case req.Item == "" || utf8.RuneCountInString(req.Item) > 100:
		return errors.New("item: required, at most 100 characters")
	case req.Quantity < 1 || req.Quantity > maxQuantity:
		return errors.New("quantity: must be between 1 and 1000")
	}
	return nil
}

// orderStore keeps orders in memory. It is safe for concurrent use.
type orderStore struct {
	mu     sync.Mutex
	orders map[string]order
	nextID int
}

// newOrderStore returns a store seeded with a few sample orders.
func newOrderStore() *orderStore {
	s := &orderStore{orders: map[string]order{}, nextID: 1}
	for _, o := range []order{
		{Customer: "alice", Item: "widget", Quantity: 2, Status: "shipped"},
		{Customer: "bob", Item: "gadget", Quantity: 1, Status: "paid"},
		{Customer: "alice", Item: "sprocket", Quantity: 12, Status: "created"},
	} {
		s.add(o)
	}
	return s
}

// add stores o under the next id and returns it with that id.
func (s *orderStore) add(o order) order {
	s.mu.Lock()
	defer s.mu.Unlock()
	o.ID = strconv.Itoa(s.nextID)
	s.nextID++
	s.orders[o.ID] = o
	return o
}

func (s *orderStore) get(id string) (order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	return o, ok
}

// list returns every order, by ascending numeric id.
func (s *orderStore) list() []order {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]order, 0, len(s.orders))
	for _, o := range s.orders {
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b order) int {
		x, _ := strconv.Atoi(a.ID)
		y, _ := strconv.Atoi(b.ID)
		return x - y
	})
	return out
}

func (a *api) listOrders(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string][]order{"orders": a.store.list()})
}

// servedOrder is the answer of GET /orders/{id}: the order and, behind the
// gateway, the subject it was served to.
type servedOrder struct {
	order
	ServedTo string `json:"served_to,omitempty"`
}

func (a *api) getOrder(w http.ResponseWriter, r *http.Request) {
	o, ok := a.store.get(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "order not found")
		return
	}
	writeJSON(w, http.StatusOK, servedOrder{order: o, ServedTo: r.Header.Get(subjectHeader)})
}

func (a *api) createOrder(w http.ResponseWriter, r *http.Request) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "content type must be application/json")
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxOrderBody))
	dec.DisallowUnknownFields()
	var req orderRequest
	if err := dec.Decode(&req); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeError(w, http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		writeError(w, http.StatusBadRequest, "body must be one JSON object with customer, item and quantity")
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "body must be one JSON object with customer, item and quantity")
		return
	}
	if err := req.validate(); err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	o := a.store.add(order{Customer: req.Customer, Item: req.Item, Quantity: req.Quantity, Status: "created"})
	w.Header().Set("Location", "/orders/"+o.ID)
	writeJSON(w, http.StatusCreated, o)
}

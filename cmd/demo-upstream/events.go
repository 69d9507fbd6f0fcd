package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// orderEvents streams an order's status history as server-sent events,
// flushing each one, with eventInterval between two events. It shows that
// the gateway streams responses instead of buffering them.
func (a *api) orderEvents(w http.ResponseWriter, r *http.Request) {
	o, ok := a.store.get(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "order not found")
		return
	}
	statuses := [...]string{"created", "paid", "packed", "shipped"}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	for i, status := range statuses {
		if i > 0 && a.eventInterval > 0 {
			t := time.NewTimer(a.eventInterval)
			select {
			case <-r.Context().Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		data, err := json.Marshal(map[string]string{"order_id": o.ID, "status": status})
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(w, "id: %d\nevent: status\ndata: %s\n\n", i+1, data); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

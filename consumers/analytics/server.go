package analytics

import (
	"encoding/json"
	"io/fs"
	"net/http"
)

// routes are the dashboard's and the API's; GET /metrics and GET /healthz are the shared
// runtime's (consumers.ServeListener).
func (s *Service) routes() http.Handler {
	assets, _ := fs.Sub(web, "web/assets") // a directory of the embedded tree: cannot fail
	mux := http.NewServeMux()
	mux.HandleFunc("GET /analytics", s.dashboard)
	mux.HandleFunc("GET /analytics/api/summary", s.summary)
	mux.Handle("GET /analytics/assets/", http.StripPrefix("/analytics/assets/", http.FileServerFS(assets)))
	mux.Handle("GET /{$}", http.RedirectHandler("/analytics", http.StatusFound))
	for pattern, h := range s.extra {
		mux.Handle(pattern, h)
	}
	return mux
}

type errorJSON struct {
	Status string `json:"status"`
	Error  string `json:"error"`
}

// badRequest answers 400 for a bad parameter, with what is wrong with it.
func badRequest(w http.ResponseWriter, err error) {
	writeJSON(w, http.StatusBadRequest, errorJSON{Status: "bad_request", Error: err.Error()})
}

// unavailable answers 503 when the database fails a query; the detail goes to the log only,
// since a DSN may be in it.
func (s *Service) unavailable(w http.ResponseWriter, err error) {
	s.log.Error("analytics: query", "err", err)
	writeJSON(w, http.StatusServiceUnavailable, errorJSON{Status: "unavailable", Error: "the analytics database did not answer; try again"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

package api

import (
	"embed"
	"io/fs"
	"net/http"
)

// The operator's page: static files, embedded, which read the API with its
// token from the browser. They hold no secret and are served without the
// token; the token reaches the page in the fragment of the link `cuivre ui`
// prints, which the browser never sends to a server.
//
//go:embed ui
var uiFiles embed.FS

func uiRoutes(mux *http.ServeMux) {
	files, _ := fs.Sub(uiFiles, "ui")
	static := http.StripPrefix("/ui/", http.FileServerFS(files))
	mux.Handle("GET /ui/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		static.ServeHTTP(w, r)
	}))
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
}

package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"mime"
	"net/http"
	"path"
	"time"
)

// The web UI: one page (index.html), one script and one style sheet, served
// from the binary. The script polls the JSON API and draws everything
// itself; nothing is fetched from anywhere but this server (the
// Content-Security-Policy says so to the browser too).
//
//go:embed web/index.html web/app.js web/style.css
var web embed.FS

// webFiles are served under /static/; index.html at /.
var webFiles = []string{"app.js", "style.css"}

// contentPolicy allows the page only this server's script, style sheet and
// API, and no frame, plugin or other origin.
const contentPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// serveStatic returns the handler of the embedded file web/name.
func serveStatic(name string) http.HandlerFunc {
	body, err := web.ReadFile("web/" + name)
	if err != nil {
		panic("ui: missing embedded file " + name) // the embed directive lists it
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", ctype)
		h.Set("ETag", etag)
		h.Set("Cache-Control", "no-cache") // revalidate: a new binary serves new files
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", contentPolicy)
		h.Set("Referrer-Policy", "no-referrer")
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
	}
}

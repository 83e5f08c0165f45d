package console

import (
	"bytes"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// page is what every template gets; Data is the page's own.
type page struct {
	Title string
	Nav   string // which tab is current
	CSRF  string
	Error string
	Flash string
	Data  any
}

var pageNames = []string{"login", "overview", "users", "audit"}

var funcs = template.FuncMap{
	"ts": func(ms int64) string {
		if ms == 0 {
			return "—"
		}
		return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05Z")
	},
	"orDash": func(s string) string {
		if s == "" {
			return "—"
		}
		return s
	},
	"short": func(s string) string {
		if len(s) > 10 {
			return s[:10] + "…"
		}
		return s
	},
	"join": strings.Join,
}

func parsePages() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		out[name] = t
	}
	return out, nil
}

// render writes the page through a buffer, so a template error is a clean 500.
func (c *Console) render(w http.ResponseWriter, status int, name string, p page) {
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		c.log.Error("console: rendering failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

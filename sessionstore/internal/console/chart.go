package console

import (
	"fmt"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// The overview's chart: events per hour over the last 24 h, one series per kind, drawn as an
// inline SVG by the template from these numbers (no script, no style attribute).

const (
	chartHours  = 24
	chartWidth  = 720
	chartHeight = 160
	chartPad    = 24
)

type series struct {
	Kind   string
	Label  string
	Color  string
	Total  int
	Counts [chartHours]int
	Points string // the polyline's points
}

type chart struct {
	Series []*series
	Max    int
	Width  int
	Height int
	Ticks  []tick
}

type tick struct {
	X     int
	Label string
}

var chartKinds = []struct{ kind, label, color string }{
	{store.AuditLogin, "Logins", "#2563eb"},
	{store.AuditLoginFailed, "Failed logins", "#d97706"},
	{store.AuditLockout, "Lockouts", "#dc2626"},
	{store.AuditReuse, "Refresh reuse", "#7c3aed"},
}

// buildChart buckets events (At in [now-24h, now)) by hour.
func buildChart(events []store.AuditEvent, now int64) chart {
	const hour = int64(3_600_000)
	start := now - chartHours*hour
	c := chart{Width: chartWidth, Height: chartHeight}
	byKind := map[string]*series{}
	for _, k := range chartKinds {
		s := &series{Kind: k.kind, Label: k.label, Color: k.color}
		c.Series = append(c.Series, s)
		byKind[k.kind] = s
	}
	for _, e := range events {
		s := byKind[e.Kind]
		if s == nil || e.At < start || e.At >= now {
			continue
		}
		s.Counts[(e.At-start)/hour]++
		s.Total++
	}
	c.Max = 1
	for _, s := range c.Series {
		for _, n := range s.Counts {
			c.Max = max(c.Max, n)
		}
	}
	step := float64(chartWidth-2*chartPad) / float64(chartHours-1)
	for _, s := range c.Series {
		pts := make([]byte, 0, chartHours*12)
		for i, n := range s.Counts {
			x := float64(chartPad) + float64(i)*step
			y := float64(chartHeight-chartPad) - float64(n)/float64(c.Max)*float64(chartHeight-2*chartPad)
			pts = fmt.Appendf(pts, "%.1f,%.1f ", x, y)
		}
		s.Points = string(pts)
	}
	for i := 0; i < chartHours; i += 6 {
		c.Ticks = append(c.Ticks, tick{X: chartPad + int(float64(i)*step), Label: fmt.Sprintf("-%dh", chartHours-i)})
	}
	return c
}

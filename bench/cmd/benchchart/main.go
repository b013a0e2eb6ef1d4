// Command benchchart draws the benchmark's chart from aionbench's JSON:
// launch → child start and wrapper RSS against the number of secrets, one
// line per tool, and each wrapper's RSS over time at the smallest size. Pure Go (gonum/plot), so it runs wherever Go does.
package main

import (
	"flag"
	"fmt"
	"image/color"
	"os"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

// results is the part of aionbench's JSON the chart needs.
type results struct {
	When   string `json:"when"`
	Launch []struct {
		Tool  string `json:"tool"`
		N     int    `json:"secrets"`
		Stats struct {
			Median float64 `json:"median"`
		} `json:"stats_ms"`
	} `json:"launch"`
	Supervise []struct {
		Tool    string `json:"tool"`
		N       int    `json:"secrets"`
		Steady  int    `json:"steady_rss_kib"`
		Samples []int  `json:"rss_samples_kib"` // one a second
	} `json:"supervise"`
}

var order = []string{"floor", "vault-floor", "aion-exec", "consul-template", "vault-agent"}

var title = map[string]string{
	"floor":           "floor (child alone)",
	"vault-floor":     "Vault alone (bare HTTP)",
	"aion-exec":       "aion-exec",
	"vault-agent":     "Vault Agent exec",
	"consul-template": "consul-template exec",
}

var colors = map[string]color.Color{
	"floor":           color.RGBA{0x88, 0x88, 0x88, 0xff},
	"vault-floor":     color.RGBA{0x99, 0x66, 0xcc, 0xff},
	"aion-exec":       color.RGBA{0x1f, 0x77, 0xb4, 0xff},
	"vault-agent":     color.RGBA{0xd6, 0x27, 0x28, 0xff},
	"consul-template": color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
}

func main() {
	in := flag.String("in", "bench/results/latest.json", "aionbench results")
	out := flag.String("out", "bench/results/chart.png", "PNG to write")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "benchchart:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	var r results
	if err := kit.ReadJSON(in, &r); err != nil {
		return err
	}
	start, rss, err := bySize(r)
	if err != nil {
		return err
	}
	overTime, err := rssOverTime(r)
	if err != nil {
		return err
	}
	return kit.SaveRow(out, 17*vg.Inch, 5*vg.Inch, 110, vg.Points(10), start, rss, overTime)
}

// bySize is launch → child start and the wrapper's RSS against the number
// of secrets, a line per tool.
func bySize(r results) (start, rss *plot.Plot, err error) {
	start = plot.New()
	start.Title.Text = "launch → child start (median, log scale)"
	start.X.Label.Text = "secrets (5 fields each)"
	start.Y.Label.Text = "ms"
	start.Y.Scale = plot.LogScale{}
	start.Y.Tick.Marker = plot.LogTicks{Prec: -1}

	rss = plot.New()
	rss.Title.Text = "wrapper RSS while supervising (steady)"
	rss.X.Label.Text = "secrets (5 fields each)"
	rss.Y.Label.Text = "MiB"
	rss.Y.Min = 0

	for _, tool := range order {
		var lp, rp plotter.XYs
		for _, l := range r.Launch {
			if l.Tool == tool && l.Stats.Median > 0 {
				lp = append(lp, plotter.XY{X: float64(l.N), Y: l.Stats.Median})
			}
		}
		for _, s := range r.Supervise {
			if s.Tool == tool {
				rp = append(rp, plotter.XY{X: float64(s.N), Y: float64(s.Steady) / 1024})
			}
		}
		if err := addLine(start, tool, lp); err != nil {
			return nil, nil, err
		}
		if err := addLine(rss, tool, rp); err != nil {
			return nil, nil, err
		}
	}
	// Room above the highest line for the legend, top left.
	var sizes []float64
	for _, l := range r.Launch {
		if !slices.Contains(sizes, float64(l.N)) {
			sizes = append(sizes, float64(l.N))
		}
	}
	slices.Sort(sizes)
	start.Y.Max *= 30
	rss.Y.Max *= 1.5
	for _, p := range []*plot.Plot{start, rss} {
		p.Legend.Top = true
		p.Legend.Left = true
		p.Legend.XOffs = vg.Points(6)
		p.Legend.YOffs = -vg.Points(6)
		p.Add(plotter.NewGrid())
		p.X.Min = 0
		p.X.Tick.Marker = sizeTicks(sizes)
	}
	return start, rss, nil
}

// rssOverTime is each wrapper's RSS over time at the smallest size: a Go
// wrapper's heap grows for dozens of polls before its first collection,
// which a short look misses.
func rssOverTime(r results) (*plot.Plot, error) {
	small := 0
	for _, sv := range r.Supervise {
		if small == 0 || sv.N < small {
			small = sv.N
		}
	}
	overTime := plot.New()
	overTime.Title.Text = fmt.Sprintf("wrapper RSS over time, %d secrets, 2 s polls", small)
	overTime.X.Label.Text = "seconds supervising"
	overTime.Y.Label.Text = "MiB (log scale)"
	overTime.Y.Scale = plot.LogScale{}
	overTime.Y.Tick.Marker = plot.ConstantTicks(ticks(8, 10, 12, 15, 20, 30, 50, 100, 150))
	for _, tool := range order {
		var xys plotter.XYs
		for _, sv := range r.Supervise {
			if sv.Tool == tool && sv.N == small {
				for i, kib := range sv.Samples {
					xys = append(xys, plotter.XY{X: float64(i), Y: float64(kib) / 1024})
				}
			}
		}
		if len(xys) == 0 {
			continue
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = colors[tool], vg.Points(2)
		overTime.Add(l)
		overTime.Legend.Add(title[tool], l)
	}
	overTime.Add(plotter.NewGrid())
	overTime.Legend.Top, overTime.Legend.Left = true, true
	overTime.Legend.XOffs, overTime.Legend.YOffs = vg.Points(6), -vg.Points(6)
	overTime.Y.Min, overTime.Y.Max = 8, overTime.Y.Max*2.5
	return overTime, nil
}

func ticks(vs ...float64) []plot.Tick {
	var ts []plot.Tick
	for _, v := range vs {
		ts = append(ts, plot.Tick{Value: v, Label: fmt.Sprint(v)})
	}
	return ts
}

// sizeTicks labels the x axis at the measured numbers of secrets.
func sizeTicks(sizes []float64) plot.Ticker {
	return plot.TickerFunc(func(min, max float64) []plot.Tick {
		var ts []plot.Tick
		for _, x := range sizes {
			ts = append(ts, plot.Tick{Value: x, Label: fmt.Sprint(x)})
		}
		return ts
	})
}

func addLine(p *plot.Plot, tool string, xys plotter.XYs) error {
	if len(xys) == 0 {
		return nil
	}
	slices.SortFunc(xys, func(a, b plotter.XY) int { return int(a.X - b.X) })
	l, s, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	l.Color, s.Color = colors[tool], colors[tool]
	l.Width = vg.Points(2)
	s.Shape = draw.CircleGlyph{}
	s.Radius = vg.Points(3)
	p.Add(l, s)
	p.Legend.Add(title[tool], l, s)
	return nil
}

package main

import (
	"fmt"
	"image/color"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

var (
	blue   = color.RGBA{0x1f, 0x77, 0xb4, 0xff}
	red    = color.RGBA{0xd6, 0x27, 0x28, 0xff}
	grey   = color.RGBA{0x88, 0x88, 0x88, 0xff}
	shade  = color.NRGBA{0xd6, 0x27, 0x28, 0x40}
	green  = color.RGBA{0x2c, 0xa0, 0x2c, 0xff}
	orange = color.RGBA{0xff, 0x7f, 0x0e, 0xff}
)

// chart draws three panels: the fleet's requests per second over the whole
// run (outage shaded, rotations marked, the steady rate and 3× it), the
// seconds around the recovery, and write → SIGHUP per rotation as CDFs.
func chart(r *Results, out string) error {
	whole, err := runPanel(r)
	if err != nil {
		return err
	}
	rec, err := recoveryPanel(r)
	if err != nil {
		return err
	}
	cdf, err := hupPanel(r)
	if err != nil {
		return err
	}
	return kit.SaveRow(out, 18*vg.Inch, 5*vg.Inch, 100, vg.Points(14), whole, rec, cdf)
}

// runPanel is the fleet's requests per second over the whole run.
func runPanel(r *Results) (*plot.Plot, error) {
	nominal := r.Steady.NominalRate
	t0 := r.Series.T0
	whole := plot.New()
	whole.Title.Text = fmt.Sprintf("Vault requests/s from %d instances (audit log)", r.Settings.Instances)
	whole.X.Label.Text = "seconds since the launch"
	whole.Y.Label.Text = "requests/s"
	var xys plotter.XYs
	peak := 0.0
	for i, c := range r.Series.PerSecond {
		xys = append(xys, plotter.XY{X: float64(i), Y: float64(c)})
		peak = max(peak, float64(c))
	}
	ymax := max(peak, 3*nominal) * 1.45
	o := r.Outage
	if !o.StopAt.IsZero() {
		x0 := o.StopAt.Sub(t0).Seconds()
		x1 := o.FirstRequestAt.Sub(t0).Seconds()
		if o.FirstRequestAt.IsZero() {
			x1 = o.ActiveAt.Sub(t0).Seconds()
		}
		if err := addShade(whole, x0, x1, ymax, "Vault down / sealed"); err != nil {
			return nil, err
		}
	}
	if len(xys) > 0 {
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = blue, vg.Points(1.2)
		whole.Add(l)
		whole.Legend.Add("fleet requests/s", l)
	}
	n := float64(len(r.Series.PerSecond))
	if err := addHLine(whole, 0, n, nominal, grey, "steady: instances × secrets / interval"); err != nil {
		return nil, err
	}
	if err := addHLine(whole, 0, n, 3*nominal, red, "3× steady (the limit)"); err != nil {
		return nil, err
	}
	for k, rot := range r.Rotations {
		x := rot.WrittenAt.Sub(t0).Seconds()
		label := ""
		if k == 0 {
			label = "rotation (KV write)"
		}
		if err := addVLine(whole, x, ymax, green, label); err != nil {
			return nil, err
		}
	}
	whole.Y.Min, whole.Y.Max, whole.X.Min = 0, ymax, 0
	whole.Add(plotter.NewGrid())
	whole.Legend.Top, whole.Legend.Left = true, true
	return whole, nil
}

// recoveryPanel is the requests per second after the outage, aligned on the
// first request served.
func recoveryPanel(r *Results) (*plot.Plot, error) {
	nominal := r.Steady.NominalRate
	rec := plot.New()
	rec.Title.Text = "after the outage: requests per second"
	rec.X.Label.Text = "seconds after the first request Vault served again"
	rec.Y.Label.Text = "requests/s"
	var bars plotter.Values
	for _, c := range r.Outage.AfterSeries {
		bars = append(bars, float64(c))
	}
	if len(bars) > 0 {
		bc, err := plotter.NewBarChart(bars, vg.Points(9))
		if err != nil {
			return nil, err
		}
		bc.Color, bc.LineStyle.Width = blue, 0
		bc.XMin = 0.5
		rec.Add(bc)
		rec.Legend.Add("fleet requests in second k", bc)
	}
	m := float64(len(bars)) + 1
	if err := addHLine(rec, 0, m, nominal, grey, "steady"); err != nil {
		return nil, err
	}
	if err := addHLine(rec, 0, m, 3*nominal, red, "3× steady"); err != nil {
		return nil, err
	}
	rp := 0.0
	for _, v := range bars {
		rp = max(rp, v)
	}
	rec.Y.Min, rec.Y.Max, rec.X.Min = 0, max(rp, 3*nominal)*1.25, 0
	rec.Add(plotter.NewGrid())
	rec.Legend.Top = true
	return rec, nil
}

// hupPanel is write → SIGHUP: one CDF per rotation.
func hupPanel(r *Results) (*plot.Plot, error) {
	cdf := plot.New()
	cdf.Title.Text = "KV write → child SIGHUP, each child"
	cdf.X.Label.Text = "seconds after the write"
	cdf.Y.Label.Text = "children signalled"
	cols := []color.Color{blue, green, orange, red, grey}
	for k, rot := range r.Rotations {
		if len(rot.Latencies) == 0 {
			continue
		}
		xs := append([]float64(nil), rot.Latencies...)
		sort.Float64s(xs)
		var pts plotter.XYs
		for i, x := range xs {
			pts = append(pts, plotter.XY{X: x / 1000, Y: float64(i + 1)})
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = cols[k%len(cols)], vg.Points(1.5)
		cdf.Add(l)
		name := fmt.Sprintf("rotation %d", rot.N)
		if rot.AfterOutage {
			name += " (after the outage)"
		}
		cdf.Legend.Add(name, l)
	}
	limit := r.Settings.IntervalS + r.Settings.MarginS
	if err := addVLine(cdf, limit, float64(r.Settings.Instances)*1.05, red, "one interval + margin"); err != nil {
		return nil, err
	}
	cdf.X.Min, cdf.Y.Min = 0, 0
	cdf.Y.Max = float64(r.Settings.Instances) * 1.05
	var yt []plot.Tick
	for k := range 5 {
		v := float64(r.Settings.Instances * k / 4)
		yt = append(yt, plot.Tick{Value: v, Label: fmt.Sprint(int(v))})
	}
	cdf.Y.Tick.Marker = plot.ConstantTicks(yt)
	cdf.Add(plotter.NewGrid())
	cdf.Legend.Top, cdf.Legend.Left = true, true
	return cdf, nil
}

func addShade(p *plot.Plot, x0, x1, ymax float64, label string) error {
	poly, err := plotter.NewPolygon(plotter.XYs{{X: x0, Y: 0}, {X: x1, Y: 0}, {X: x1, Y: ymax}, {X: x0, Y: ymax}})
	if err != nil {
		return err
	}
	poly.Color = shade
	poly.LineStyle.Width = 0
	p.Add(poly)
	p.Legend.Add(label, poly)
	return nil
}

// addHLine draws a dashed level at y from x0 to x1.
func addHLine(p *plot.Plot, x0, x1, y float64, c color.Color, label string) error {
	return addRule(p, plotter.XYs{{X: x0, Y: y}, {X: x1, Y: y}}, c, vg.Points(5), vg.Points(3), label)
}

// addVLine draws a dotted marker at x from 0 to ymax.
func addVLine(p *plot.Plot, x, ymax float64, c color.Color, label string) error {
	return addRule(p, plotter.XYs{{X: x, Y: 0}, {X: x, Y: ymax}}, c, vg.Points(2), vg.Points(2), label)
}

// addRule draws a thin line between two points, dashes on and off long,
// in the legend unless label is empty.
func addRule(p *plot.Plot, xys plotter.XYs, c color.Color, on, off vg.Length, label string) error {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return err
	}
	l.Color, l.Width = c, vg.Points(1)
	l.Dashes = []vg.Length{on, off}
	p.Add(l)
	if label != "" {
		p.Legend.Add(label, l)
	}
	return nil
}

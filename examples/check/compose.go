package check

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"
)

// Compose is examples/compose/docker-compose.yml as `docker compose` loads
// it on a machine whose environment sets nothing.
type Compose struct {
	Dir     string // absolute
	File    string // absolute
	Project *types.Project
	// FromShell lists each ${NAME} that compose takes from the environment
	// of `docker compose` for want of a default, and the string it is in.
	FromShell []string

	fromShell map[string]bool
}

// LoadCompose loads the compose file with compose-go's loader: schema,
// interpolation, anchors and merges, env_file, paths made absolute.
func LoadCompose(root string) (*Compose, error) {
	c := &Compose{Dir: filepath.Join(root, ComposeDir), fromShell: map[string]bool{}}
	c.File = filepath.Join(c.Dir, "docker-compose.yml")
	details := types.ConfigDetails{
		WorkingDir:  c.Dir,
		ConfigFiles: []types.ConfigFile{{Filename: c.File}},
		Environment: types.Mapping{},
	}
	p, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.Interpolate.Substitute = c.substitute
	})
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", Rel(root, c.File), err)
	}
	if len(p.Services) == 0 {
		return nil, fmt.Errorf("load %s: no services", Rel(root, c.File))
	}
	c.Project = p
	c.FromShell = slices.Sorted(maps.Keys(c.fromShell))
	return c, nil
}

// substitute is compose's own interpolation, noting each variable that
// neither the (empty) environment nor a default gives a value.
func (c *Compose) substitute(s string, m template.Mapping) (string, error) {
	note := func(sub string, m template.Mapping, cfg *template.Config) (string, error) {
		v, applied, err := template.DefaultReplacementAppliedFunc(sub, m, cfg)
		if err == nil && !applied {
			c.fromShell[fmt.Sprintf("%q: %s is taken from the environment of `docker compose`, with no default (write $%s for a literal $)", s, sub, sub)] = true
		}
		return v, err
	}
	return template.SubstituteWithOptions(s, m, template.WithoutLogging, template.WithReplacementFunction(note))
}

// ServiceNames lists the services, sorted.
func (c *Compose) ServiceNames() []string {
	return slices.Sorted(maps.Keys(c.Project.Services))
}

// Service is the named service; ok is false when there is none.
func (c *Compose) Service(name string) (s types.ServiceConfig, ok bool) {
	s, ok = c.Project.Services[name]
	return s, ok
}

// Mount is one volume, bind mount or tmpfs of a service.
type Mount struct {
	Type     string `json:"type"`             // "bind", "volume" or "tmpfs"
	Source   string `json:"source,omitempty"` // bind: a path on this machine; volume: its name
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// Mounts lists a service's volumes (compose made bind sources absolute)
// and its tmpfs mounts.
func Mounts(s types.ServiceConfig) []Mount {
	var out []Mount
	for _, v := range s.Volumes {
		out = append(out, Mount{Type: v.Type, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly})
	}
	for _, tm := range s.Tmpfs {
		target, _, _ := strings.Cut(tm, ":")
		out = append(out, Mount{Type: types.VolumeTypeTmpfs, Target: target})
	}
	return out
}

// Build is how compose builds a service's image.
type Build struct {
	Service    string
	Context    string // absolute
	Dockerfile string // absolute
}

// BuildOf is the service's build, if it has one.
func BuildOf(s types.ServiceConfig) (Build, bool) {
	if s.Build == nil {
		return Build{}, false
	}
	df := s.Build.Dockerfile
	if !filepath.IsAbs(df) {
		df = filepath.Join(s.Build.Context, df)
	}
	return Build{Service: s.Name, Context: s.Build.Context, Dockerfile: df}, true
}

// BuiltImages maps each image repository the compose file builds to its
// build. Unnamed lists the services that build an image without naming it
// repo:tag, so that other services and examples/kubernetes cannot use it.
func (c *Compose) BuiltImages() (built map[string]Build, unnamed []string) {
	built = map[string]Build{}
	for _, name := range c.ServiceNames() {
		s := c.Project.Services[name]
		b, ok := BuildOf(s)
		if !ok {
			continue
		}
		im, err := ParseImage(s.Image)
		if err != nil || im.Tag == "" {
			unnamed = append(unnamed, name)
			continue
		}
		built[im.Repo] = b
	}
	return built, unnamed
}

// Environment is what compose sets in the service's container, over the
// image's ENV: env_file, then environment, interpolated. A name without a
// value stays unset in the container, and is left out.
func Environment(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

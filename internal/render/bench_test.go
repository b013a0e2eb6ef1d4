package render

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// benchSet builds n secrets shaped like the db secret, each with its own
// env template and every fifth with a JSON file.
func benchSet(b *testing.B, n int) (*Set, Data) {
	dir := b.TempDir()
	d := Data{EnvKey: "prod"}
	var names []string
	for i := range n {
		name := fmt.Sprintf("svc%d", i)
		names = append(names, name)
		d[name] = map[string]any{"username": "user" + name, "password": "p@ss/" + name, "host": name + ".internal", "port": "5432", "database": name}
		text := fmt.Sprintf("%[1]s_URL={{ pgURL .%[2]s }}\n%[1]s_USER={{ .%[2]s.username }}\n%[1]s_PASSWORD={{ .%[2]s.password }}\n", "SVC"+fmt.Sprint(i), name)
		if err := os.WriteFile(filepath.Join(dir, name+".env.tmpl"), []byte(text), 0o600); err != nil {
			b.Fatal(err)
		}
		if i%5 == 0 {
			if err := os.WriteFile(filepath.Join(dir, name+".json.tmpl"), []byte("{{ toPrettyJSON ."+name+" }}"), 0o600); err != nil {
				b.Fatal(err)
			}
		}
	}
	s, err := Load(Options{RenderDir: "/run/x", TemplatesDir: dir, Secrets: names})
	if err != nil {
		b.Fatal(err)
	}
	return s, d
}

func BenchmarkRender(b *testing.B) {
	for _, n := range []int{5, 100} {
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) {
			s, d := benchSet(b, n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Render(d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package check

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// YAMLFiles lists every YAML file of examples/compose and examples/kubernetes.
func YAMLFiles(root string) ([]string, error) {
	var out []string
	for _, dir := range []string{ComposeDir, KubeDir} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml")) {
				out = append(out, p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list the YAML files of %s: %w", dir, err)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("list the YAML files of the examples: there are none")
	}
	return out, nil
}

// document is one document of a YAML file, to decode.
type document struct {
	node  *yaml.Node
	index int // from 1, in the file
}

// documents reads every document of a YAML file. Empty documents are
// dropped; every other one must be a mapping.
func documents(p string) ([]document, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var out []document
	for i := 1; ; i++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: document %d: %w", p, i, err)
		}
		if len(doc.Content) == 0 || doc.Content[0].Tag == "!!null" {
			continue
		}
		if doc.Content[0].Kind != yaml.MappingNode {
			return nil, fmt.Errorf("parse %s: document %d is a %s, not a mapping", p, i, doc.Content[0].Tag)
		}
		out = append(out, document{&doc, i})
	}
}

// Documents decodes every document of a YAML file: empty ones are dropped,
// every other one must be a mapping without duplicate keys.
func Documents(p string) ([]map[string]any, error) {
	docs, err := documents(p)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, 0, len(docs))
	for _, d := range docs {
		var m map[string]any
		if err := d.node.Decode(&m); err != nil {
			return nil, fmt.Errorf("parse %s: document %d: %w", p, d.index, err)
		}
		out = append(out, m)
	}
	return out, nil
}

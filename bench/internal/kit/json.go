package kit

import (
	"encoding/json"
	"fmt"
	"os"
)

// WriteJSON writes v to path as the results files are written: indented
// by two spaces, with a final newline.
func WriteJSON(path string, v any) error {
	j, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(j, '\n'), 0o644)
}

// ReadJSON fills v from the JSON file at path.
func ReadJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	return nil
}

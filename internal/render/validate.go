package render

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"path/filepath"
)

// validate checks a file output by its extension before it may replace the
// old file: .json must parse, .pem must be PEM blocks and nothing else.
// Other files are opaque.
func validate(name string, data []byte) error {
	switch filepath.Ext(name) {
	case ".json":
		var syntax *json.SyntaxError
		if err := json.Unmarshal(data, new(json.RawMessage)); errors.As(err, &syntax) {
			// json's own message quotes the offending character, which
			// may be part of a secret; the offset is enough.
			return fmt.Errorf("%s is not valid JSON (syntax error at byte %d)", name, syntax.Offset)
		} else if err != nil {
			return fmt.Errorf("%s is not valid JSON", name)
		}
	case ".pem":
		blocks := 0
		for rest := bytes.TrimSpace(data); len(rest) > 0; rest = bytes.TrimSpace(rest) {
			// pem.Decode skips text before a block; here there must be none.
			if !bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
				return fmt.Errorf("%s holds data that is not a PEM block", name)
			}
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				return fmt.Errorf("%s holds a malformed PEM block", name)
			}
			blocks++
		}
		if blocks == 0 {
			return fmt.Errorf("%s holds no PEM block", name)
		}
	}
	return nil
}

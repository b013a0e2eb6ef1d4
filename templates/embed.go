// Package templates holds aion-exec's built-in templates, embedded in the
// binary so that a bare image needs no template files. The render package
// decides which of them apply; this package must never hold logic.
package templates

import "embed"

// FS holds every built-in *.tmpl file.
//
//go:embed *.tmpl
var FS embed.FS

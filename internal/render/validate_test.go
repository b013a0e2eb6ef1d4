package render

import "testing"

func TestValidate(t *testing.T) {
	const block = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"
	cases := []struct{ name, data, err string }{
		{"x.json", `{"a": [1, 2]}`, ""},
		{"x.json", "\"s\"\n", ""},
		{"x.json", `{"a": }`, "x.json is not valid JSON (syntax error at byte 7)"},
		{"x.json", ``, "x.json is not valid JSON (syntax error at byte 0)"},
		{"x.pem", block, ""},
		{"x.pem", "\n" + block + "\n  " + block, ""},
		{"x.pem", "", "x.pem holds no PEM block"},
		{"x.pem", "junk\n" + block, "x.pem holds data that is not a PEM block"},
		{"x.pem", block + "junk", "x.pem holds data that is not a PEM block"},
		{"x.pem", "-----BEGIN X-----\nnot ended", "x.pem holds a malformed PEM block"},
		{"x.txt", "anything", ""},
		{"x.env", "not checked: X.env.tmpl is an env template, never a file", ""},
	}
	for _, c := range cases {
		err := validate(c.name, []byte(c.data))
		if got := errString(err); got != c.err {
			t.Errorf("validate(%s, %q) = %q, want %q", c.name, c.data, got, c.err)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

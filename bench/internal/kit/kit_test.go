package kit

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestProcStatusOfSelf(t *testing.T) {
	st, err := ProcStatus(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st["VmRSS"] <= 0 || st["VmHWM"] < st["VmRSS"] {
		t.Errorf("VmRSS %d KiB, VmHWM %d KiB", st["VmRSS"], st["VmHWM"])
	}
}

func TestParseEventsSkipsLinesBeingWritten(t *testing.T) {
	es := ParseEvents([]byte("start 10 1700000000000000000 25 00ff\nhup 10 1700000001000000000\nstart 11 1700000002000000000 2\nhup 10 17"))
	if len(es) != 3 || es[0].NVars != 25 || es[0].Hash != "00ff" || es[1].Kind != "hup" || es[2].At.UnixNano() != 17 {
		t.Fatalf("ParseEvents = %+v", es)
	}
}

func TestAuditLinesKeepsWhatParsesAndMatches(t *testing.T) {
	type entry struct{ Type string }
	es, err := AuditLines(strings.NewReader("{\"type\":\"request\"}\nnot json\n{\"type\":\"response\"}\n"),
		func(e *entry) bool { return e.Type == "request" })
	if err != nil || len(es) != 1 {
		t.Fatalf("AuditLines = %+v, %v", es, err)
	}
}

func TestEnvTemplateAndSecretVars(t *testing.T) {
	if got, want := EnvTemplate(2)[:46], "S001_F1={{ .s001.f1 }}\nS001_F2={{ .s001.f2 }}\n"; got != want {
		t.Errorf("EnvTemplate starts %q, want %q", got, want)
	}
	if n := strings.Count(EnvTemplate(3), "\n"); n != 3*Fields {
		t.Errorf("EnvTemplate(3) has %d lines", n)
	}
	if got := SecretVars("bench", 2); len(got) != 2 || got[1] != "AION_S002_SECRET_PATH=bench/s002" {
		t.Errorf("SecretVars = %q", got)
	}
}

func TestVaultWritesSecretsAndCreatesTokens(t *testing.T) {
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, r.Method+" "+r.URL.Path+" "+string(b))
		fmt.Fprint(w, `{"auth":{"client_token":"hvs.x"}}`)
	}))
	defer srv.Close()
	v := &Vault{Addr: srv.URL, Token: "root", HC: srv.Client()}
	if _, err := v.WriteSecret(context.Background(), "secret/data/bench/s001"); err != nil {
		t.Fatal(err)
	}
	tok, err := v.CreateToken(context.Background(), Token{Policy: "bench", TTL: "24h", DisplayName: "bench-x"})
	if err != nil || tok != "hvs.x" {
		t.Fatalf("CreateToken = %q, %v", tok, err)
	}
	if len(bodies) != 2 || !strings.HasPrefix(bodies[0], `POST /v1/secret/data/bench/s001 {"data":{"f1":"`) || strings.Count(bodies[0], `":"`) != Fields ||
		bodies[1] != `POST /v1/auth/token/create {"display_name":"bench-x","no_default_policy":true,"policies":["bench"],"renewable":true,"ttl":"24h"}` {
		t.Errorf("requests:\n%s", strings.Join(bodies, "\n"))
	}
}

func TestProcRunsInAGroupOfItsOwn(t *testing.T) {
	out, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	p := NewProc(exec.Command("/bin/sh", "-c", "echo $$; exit 3"))
	if p.Exited() {
		t.Fatal("exited before it started")
	}
	if err := p.Start(out); err != nil {
		t.Fatal(err)
	}
	<-p.Done
	if !p.Exited() || p.ExitAt.Before(p.T0) || p.Cmd.ProcessState.ExitCode() != 3 || !p.Cmd.SysProcAttr.Setpgid {
		t.Errorf("after the end: exited %t, %s → %s, %v", p.Exited(), p.T0, p.ExitAt, p.Err)
	}
	if got := Tail(out.Name(), 100); got != strconv.Itoa(p.Cmd.Process.Pid) {
		t.Errorf("Tail = %q, want the PID", got)
	}
}

func TestIsExe(t *testing.T) {
	if !IsExe(os.Getpid(), os.Args[0]) || IsExe(os.Getpid(), "/bin/sh") {
		t.Error("IsExe does not tell this test from /bin/sh")
	}
}

func TestJSONWritesAndReadsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	if err := WriteJSON(path, map[string]int{"b": 2, "a": 1}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "{\n  \"a\": 1,\n  \"b\": 2\n}\n" {
		t.Errorf("WriteJSON wrote %q", b)
	}
	var m map[string]int
	if err := ReadJSON(path, &m); err != nil || m["b"] != 2 {
		t.Errorf("ReadJSON = %v, %v", m, err)
	}
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ReadJSON(path, &m); err == nil || !strings.HasPrefix(err.Error(), "parse "+path+": ") {
		t.Errorf("ReadJSON of a broken file: %v", err)
	}
}

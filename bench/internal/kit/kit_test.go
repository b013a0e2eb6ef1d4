package kit

import (
	"os"
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

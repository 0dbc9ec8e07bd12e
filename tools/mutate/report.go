package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the result of one run.
type Report struct {
	When      time.Time
	Took      time.Duration
	Source    string // what was copied: "work tree at abc1234", "commit abc1234"
	List      string
	Only      string // the -only filter, if any
	GoVersion string
	Results   []Result
	Stale     []string // entries that no longer apply (run with -k)
}

func (r *Report) count(o Outcome) int {
	n := 0
	for _, res := range r.Results {
		if res.Outcome == o {
			n++
		}
	}
	return n
}

// Caught, Survived and Invalid count the results by outcome.
func (r *Report) Caught() int   { return r.count(Caught) }
func (r *Report) Survived() int { return r.count(Survived) }
func (r *Report) Invalid() int  { return r.count(Invalid) }

func (r *Report) headline() string {
	s := fmt.Sprintf("%d mutations: %d caught, %d survived", len(r.Results), r.Caught(), r.Survived())
	if n := r.Invalid(); n > 0 {
		s += fmt.Sprintf(", %d invalid", n)
	}
	if n := len(r.Stale); n > 0 {
		s += fmt.Sprintf(", %d stale entries not run", n)
	}
	return s
}

// WriteText prints the report as a table, survivors first.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "\nmutation check of %s (%s), %s, %s\n%s\n\n", r.Source, r.List, r.When.Format("2006-01-02 15:04 UTC"), r.Took.Round(time.Second), r.headline())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RESULT\tMUTATION\tWHERE\tCAUGHT BY / WHY")
	for _, res := range r.ordered() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", res.Outcome, res.M.ID, res.where(), res.explain())
	}
	tw.Flush()
	for _, s := range r.Stale {
		fmt.Fprintf(w, "stale: %s\n", s)
	}
}

// ordered returns the results survivors first, then invalid ones, then the
// caught ones, each group in list order.
func (r *Report) ordered() []Result {
	var out []Result
	for _, o := range []Outcome{Survived, Invalid, Caught} {
		for _, res := range r.Results {
			if res.Outcome == o {
				out = append(out, res)
			}
		}
	}
	return out
}

// explain is the last column: what caught a mutation, or what it simulates
// when nothing did.
func (res Result) explain() string {
	switch res.Outcome {
	case Caught:
		return fmt.Sprintf("%s (go test %s)", strings.Join(res.Failed, ", "), res.By)
	case Invalid:
		return firstLine(res.Detail)
	}
	return res.M.Why
}

// Markers of the section UpdateMarkdown rewrites.
const (
	beginMarker = "<!-- mutate:begin -->"
	endMarker   = "<!-- mutate:end -->"
)

// Markdown returns the report as the body of the result section.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Last run: %s, %s, %s, list `%s`", r.When.Format("2006-01-02 15:04 UTC"), r.Source, r.GoVersion, r.List)
	if r.Only != "" {
		fmt.Fprintf(&b, " (only ids matching `%s`)", r.Only)
	}
	fmt.Fprintf(&b, ", %s.\n\n**%s.**\n\n", r.Took.Round(time.Second), r.headline())
	b.WriteString("| result | mutation | where | caught by (test) / what it simulates |\n|---|---|---|---|\n")
	for _, res := range r.ordered() {
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", res.Outcome, res.M.ID, res.where(), mdCell(res.explain()))
	}
	for _, s := range r.Stale {
		fmt.Fprintf(&b, "\nStale entry, not run: %s\n", mdCell(s))
	}
	return b.String()
}

// mdCell escapes what would break a table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// UpdateMarkdown replaces the text between the markers in the file at path
// with the report.
func (r *Report) UpdateMarkdown(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := replaceSection(b, r.Markdown())
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, out, 0o644)
}

// replaceSection puts body between the markers of doc.
func replaceSection(doc []byte, body string) ([]byte, error) {
	i := bytes.Index(doc, []byte(beginMarker))
	j := bytes.Index(doc, []byte(endMarker))
	if i < 0 || j < i {
		return nil, errors.New("no " + beginMarker + " ... " + endMarker + " section")
	}
	var out bytes.Buffer
	out.Write(doc[:i+len(beginMarker)])
	out.WriteString("\n")
	out.WriteString(strings.TrimSpace(body))
	out.WriteString("\n")
	out.Write(doc[j:])
	return out.Bytes(), nil
}

package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// table prints aligned columns. Empty cells print as "-" so that columns
// stay readable and `awk '{print $3}'` keeps working.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, headers ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	if len(headers) > 0 {
		t.row(headers...)
	}
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
		// A tab or newline in a name would break the alignment.
		cells[i] = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, cells[i])
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// fields prints "Key  value" lines, aligned: the view of one object.
type fields struct{ t *table }

func newFields(w io.Writer) *fields { return &fields{t: newTable(w)} }

func (f *fields) add(key, value string) { f.t.row(key, value) }

func (f *fields) flush() error { return f.t.flush() }

func itoa(n int) string { return strconv.Itoa(n) }

// intOrDash keeps zero numbers out of tables where 0 means "not set".
func intOrDash(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

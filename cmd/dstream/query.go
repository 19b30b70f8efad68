package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dstream/dstream/program"
)

// runQuery is `dstream query ADDR NAME [param=value ...]`: it asks the UI
// of a running job (GET /api/v1/queries/NAME) and prints the answer as a
// table; with NAME "list" (or none) it lists the queries.
func runQuery(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	interval := fs.String("interval", "latest", "the interval to answer from: latest, or its time in Unix ms")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	asJSON := fs.Bool("json", false, "print the answer's JSON as it came")
	// Flags first, then ADDR, NAME and the parameters (flag parsing stops
	// at the first argument that is not a flag).
	synopsis := "[--interval latest|MS] [--json] ADDR [NAME [param=value ...]]"
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	switch err := fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(stdout, "Usage: dstream query %s\n\nFlags:\n", synopsis)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return flag.ErrHelp
	case err != nil:
		return program.UsageError{Err: err}
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return program.Usagef("ADDR is required: the UI's address, e.g. 127.0.0.1:4040")
	}
	base := rest[0]
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	path := "/api/v1/queries"
	q := url.Values{}
	if len(rest) > 1 && rest[1] != "list" {
		path += "/" + url.PathEscape(rest[1])
		q.Set("interval", *interval)
		for _, kv := range rest[2:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return program.Usagef("parameter %q: want name=value", kv)
			}
			q.Set(k, v)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path+"?"+q.Encode(), nil)
	if err != nil {
		return program.UsageError{Err: err}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s (HTTP %d)", e.Error, resp.StatusCode)
		}
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if *asJSON {
		_, err := stdout.Write(body)
		return err
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	defer tw.Flush()
	if len(rest) < 2 || rest[1] == "list" {
		var qs []struct {
			Name, Stream, Doc string
			Params            []struct{ Name, Default string }
		}
		if err := json.Unmarshal(body, &qs); err != nil {
			return err
		}
		fmt.Fprintln(tw, "QUERY\tSTREAM\tPARAMETERS\tWHAT")
		for _, q := range qs {
			var ps []string
			for _, p := range q.Params {
				ps = append(ps, p.Name+"="+p.Default)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", q.Name, q.Stream, strings.Join(ps, " "), q.Doc)
		}
		return nil
	}
	var a struct {
		Interval     int64
		IntervalTime string
		Result       any
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return err
	}
	fmt.Fprintf(tw, "# %s at interval %d (%s)\n", rest[1], a.Interval, a.IntervalTime)
	printTable(tw, a.Result)
	return nil
}

// printTable prints a query's result: rows of objects as columns, a list
// of values one a line, a page of pairs with its cursor, or a value.
func printTable(w io.Writer, v any) {
	switch v := v.(type) {
	case []any:
		if len(v) == 0 {
			fmt.Fprintln(w, "(none)")
			return
		}
		if first, ok := v[0].(map[string]any); ok {
			cols := make([]string, 0, len(first))
			for k := range first {
				cols = append(cols, k)
			}
			sort.Slice(cols, func(i, j int) bool {
				return colRank(cols[i]) < colRank(cols[j]) || colRank(cols[i]) == colRank(cols[j]) && cols[i] < cols[j]
			})
			fmt.Fprintln(w, strings.ToUpper(strings.Join(cols, "\t")))
			for _, row := range v {
				m, _ := row.(map[string]any)
				cells := make([]string, len(cols))
				for i, c := range cols {
					cells[i] = fmt.Sprint(m[c])
				}
				fmt.Fprintln(w, strings.Join(cells, "\t"))
			}
			return
		}
		for _, x := range v {
			fmt.Fprintln(w, fmt.Sprint(x))
		}
	case map[string]any:
		if pairs, ok := v["pairs"]; ok {
			printTable(w, pairs)
			if next, _ := v["next"].(string); next != "" {
				fmt.Fprintf(w, "# next page: after=%s\n", next)
			}
			return
		}
		b, _ := json.MarshalIndent(v, "", "  ")
		fmt.Fprintln(w, string(b))
	default:
		fmt.Fprintln(w, fmt.Sprint(v))
	}
}

// colRank puts Key before Value before anything else.
func colRank(c string) int {
	switch c {
	case "Key":
		return 0
	case "Value":
		return 1
	}
	return 2
}

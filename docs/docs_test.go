// Package docs holds the reference a user reads after the README. Its tests
// keep the pages true to the repository: every relative link resolves, to a
// file inside it and to a heading that exists, and every Caddyfile shown
// adapts.
package docs

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/lro-cancel/lro_cancel"
)

// pages are README.md and every page under docs/, relative to the repository.
func pages(t *testing.T) []string {
	t.Helper()
	found, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{filepath.Join("..", "README.md")}, found...)
}

// block is a fenced code block: its info string, text and first line.
type block struct {
	lang, text string
	line       int
}

// split returns a page's text outside fenced code blocks, line by line (a
// fenced line is left empty, so numbers stay the file's), and its blocks.
func split(text string) (prose []string, blocks []block) {
	var cur *block
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			if cur == nil {
				cur = &block{lang: strings.TrimSpace(strings.TrimPrefix(line, "```")), line: i + 1}
			} else {
				blocks = append(blocks, *cur)
				cur = nil
			}
			prose = append(prose, "")
			continue
		}
		if cur != nil {
			cur.text += line + "\n"
			prose = append(prose, "")
			continue
		}
		prose = append(prose, line)
	}
	return prose, blocks
}

var (
	inlineCode = regexp.MustCompile("`[^`]*`")
	link       = regexp.MustCompile(`\]\(([^()\s]+)\)`)
	heading    = regexp.MustCompile(`^#{1,6} +(.*?) *#*$`)
)

// anchors are the ids GitHub gives a page's headings: lower case, every
// character but letters, digits, spaces, '-' and '_' dropped, spaces made
// '-', a repeated id suffixed -1, -2...
func anchors(prose []string) map[string]bool {
	ids := map[string]bool{}
	seen := map[string]int{}
	for _, line := range prose {
		m := heading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(m[1]) {
			switch {
			case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		id := b.String()
		if n := seen[id]; n > 0 {
			ids[fmt.Sprintf("%s-%d", id, n)] = true
		} else {
			ids[id] = true
		}
		seen[id]++
	}
	return ids
}

func TestEveryRelativeLinkResolves(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	texts := map[string][]string{} // absolute path → prose
	for _, page := range pages(t) {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		abs, _ := filepath.Abs(page)
		texts[abs], _ = split(string(b))
	}
	checked := 0
	for abs, prose := range texts {
		name, _ := filepath.Rel(root, abs)
		for n, line := range prose {
			for _, m := range link.FindAllStringSubmatch(inlineCode.ReplaceAllString(line, ""), -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				checked++
				file, frag, _ := strings.Cut(target, "#")
				dest := abs
				if file != "" {
					dest = filepath.Join(filepath.Dir(abs), filepath.FromSlash(file))
				}
				if rel, err := filepath.Rel(root, dest); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
					t.Errorf("%s:%d: %s points outside the repository", name, n+1, target)
					continue
				}
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s:%d: %s: no such file", name, n+1, target)
					continue
				}
				if frag == "" {
					continue
				}
				destProse, ok := texts[dest]
				if !ok {
					t.Errorf("%s:%d: %s: an anchor into a file that is not a page", name, n+1, target)
					continue
				}
				if !anchors(destProse)[frag] {
					t.Errorf("%s:%d: %s: no heading with that anchor", name, n+1, target)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative link found: the pages are not where the test looks")
	}
}

// A Caddyfile shown in the docs adapts, as `caddy adapt` would read it. A
// synopsis (with <placeholders>) is grammar, not config, and is skipped; a
// fragment without a site (a directive, matchers) is adapted inside one.
func TestEveryCaddyfileShownAdapts(t *testing.T) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	adapted := 0
	for _, page := range pages(t) {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		_, blocks := split(string(b))
		for _, blk := range blocks {
			if blk.lang != "caddyfile" || strings.Contains(blk.text, "<") {
				continue
			}
			config := blk.text
			first := strings.TrimSpace(config)
			if !strings.HasPrefix(first, "{") && !strings.HasPrefix(first, "*.") && !strings.HasPrefix(first, ":") {
				config = "example.com {\n" + config + "\n}\n"
			}
			if _, warnings, err := adapter.Adapt([]byte(config), map[string]any{"filename": page}); err != nil {
				t.Errorf("%s:%d: the Caddyfile does not adapt: %v", page, blk.line, err)
			} else {
				for _, w := range warnings {
					t.Logf("%s:%d: %s", page, blk.line, w.Message)
				}
			}
			adapted++
		}
	}
	if adapted < 3 {
		t.Fatalf("adapted %d Caddyfiles; the README and the docs show more", adapted)
	}
}

// Every alert's runbook_url is a paragraph of these docs, and every alert
// has one.
func TestEveryAlertHasARunbookParagraph(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "deploy", "prometheus", "lro_cancel.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	alerts := regexp.MustCompile(`(?m)^\s*- alert: (\S+)$`).FindAllStringSubmatch(string(b), -1)
	urls := regexp.MustCompile(`(?m)^\s*runbook_url: "https://github\.com/lro-cancel/lro_cancel/blob/main/docs/([^"#]+)#([^"]+)"$`).FindAllStringSubmatch(string(b), -1)
	if len(alerts) == 0 || len(urls) != len(alerts) {
		t.Fatalf("%d alerts, %d runbook_urls into docs/", len(alerts), len(urls))
	}
	for i, u := range urls {
		page, err := os.ReadFile(u[1])
		if err != nil {
			t.Errorf("%s: %v", alerts[i][1], err)
			continue
		}
		prose, _ := split(string(page))
		if !anchors(prose)[u[2]] {
			t.Errorf("%s: runbook_url: docs/%s has no heading #%s", alerts[i][1], u[1], u[2])
		}
		if u[2] != strings.ToLower(alerts[i][1]) {
			t.Errorf("%s: runbook_url points at #%s, not at its own paragraph", alerts[i][1], u[2])
		}
	}
}

// The Grafana dashboard is JSON Grafana imports: panels with a title, a
// query each, all on the dashboard's data source variable.
func TestTheDashboardParses(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "deploy", "grafana", "lro_cancel.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string
		UID    string
		Panels []struct {
			Title      string
			Datasource struct{ UID string }
			Targets    []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("lro_cancel.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("lro_cancel.json: title %q, uid %q, %d panels", dash.Title, dash.UID, len(dash.Panels))
	}
	for _, p := range dash.Panels {
		if p.Title == "" || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: data source %q, %d queries", p.Title, p.Datasource.UID, len(p.Targets))
		}
		for _, q := range p.Targets {
			if !strings.Contains(q.Expr, "caddy_lro_cancel_") {
				t.Errorf("panel %q: query %q reads none of lro_cancel's metrics", p.Title, q.Expr)
			}
		}
	}
}

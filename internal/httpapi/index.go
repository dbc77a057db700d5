package httpapi

import (
	"bytes"
	"encoding/json"
	"html/template"
)

// indexPage lists the API until the web UI takes GET /.
var indexPage = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bookshelf API</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top; }
code { font-size: .95em; }
td.method { font-weight: bold; white-space: nowrap; }
</style>
</head>
<body>
<h1>Bookshelf</h1>
<p>An event-driven bookshelf. Requests and answers are JSON; errors are
<code>application/problem+json</code>. The same list is at <a href="/api"><code>/api</code></a>.</p>
<table>
<thead><tr><th>Method</th><th>Path</th><th>What it does</th><th>Service</th></tr></thead>
<tbody>
{{range .}}<tr><td class="method">{{.Method}}</td><td><code>{{.Path}}</code></td><td>{{.Description}}</td><td>{{.Service}}</td></tr>
{{end}}</tbody>
</table>
<h2>Headers</h2>
<p><code>Idempotency-Key</code> on a POST or DELETE: the same key with the same body
gives the same answer and changes the shelf once; with another body, 409.</p>
<p><code>Bookshelf-Position</code>: a command's answer carries the position of its
event; send it with a GET to read your own write (the view waits a little for it,
else answers 503 with <code>Retry-After</code>).</p>
</body>
</html>
`))

// renderIndex renders GET / and GET /api once.
func renderIndex() (page, api []byte) {
	var buf bytes.Buffer
	if err := indexPage.Execute(&buf, API); err != nil {
		panic("httpapi: index page: " + err.Error()) // a bug in the template
	}
	api, err := json.MarshalIndent(struct {
		Endpoints []Endpoint `json:"endpoints"`
	}{API}, "", "  ")
	if err != nil {
		panic("httpapi: api list: " + err.Error())
	}
	return buf.Bytes(), append(api, '\n')
}

/* landing.c: the landing page: links, probe status, and live tables of VMs and cgroups with inline SVG sparklines. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "history.h"
#include "landing.h"
#include "log.h"
#include "metrics.h"
#include "probes.h"
#include "version.h"

#define SPARK_W 120
#define SPARK_H 24
#define SPARK_SPAN (HISTORY_STEP_S * HISTORY_POINTS)

void landing_nonce(char out[LANDING_NONCE_LEN])
{
	unsigned char r[16];
	size_t got = 0;

	while (got < sizeof(r)) {
		ssize_t n = getrandom(r + got, sizeof(r) - got, 0);

		if (n < 0 && errno != EINTR)
			die_oom();	/* cannot happen on a kernel with getrandom: no weaker nonce */
		if (n > 0)
			got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

void landing_csp(char *out, size_t size, const char *nonce)
{
	snprintf(out, size, "default-src 'none'; script-src 'nonce-%s'; style-src 'nonce-%s'; "
		 "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
		 "frame-ancestors 'none'", nonce, nonce);
}

static void html_escape(struct buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': buf_append(b, "&lt;", 4); break;
		case '>': buf_append(b, "&gt;", 4); break;
		case '&': buf_append(b, "&amp;", 5); break;
		case '"': buf_append(b, "&quot;", 6); break;
		case '\'': buf_append(b, "&#39;", 5); break;
		default: buf_append(b, s, 1);
		}
	}
}

/* The same drawing as the script's spark(): x by age over the span, y by rate over the row's peak. */
static void sparkline(struct buf *b, const struct history_row *r, time_t now)
{
	double peak = 1, rate;
	time_t t;

	for (unsigned int i = 0; i < r->n; i++) {
		history_point(r, i, &t, &rate);
		if (rate > peak)
			peak = rate;
	}
	double x = 0, y = 0;

	/* a baseline over the whole span, the rates, and a dot on the last one */
	buf_printf(b, "<svg class=\"spark\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">"
		   "<line x1=\"0\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ccc\"/>"
		   "<polyline fill=\"none\" stroke=\"#2a6fdb\" stroke-width=\"1.5\" points=\"",
		   SPARK_W, SPARK_H, SPARK_W, SPARK_H, SPARK_H - 1, SPARK_W, SPARK_H - 1);
	for (unsigned int i = 0; i < r->n; i++) {
		double age;

		history_point(r, i, &t, &rate);
		age = (double)(now - t);
		x = SPARK_W * (age >= SPARK_SPAN ? 0 : 1 - age / SPARK_SPAN);
		y = SPARK_H - 2 - (SPARK_H - 4) * rate / peak;
		buf_printf(b, "%s%.1f,%.1f", i ? " " : "", x, y);
	}
	buf_printf(b, "\"/>");
	if (r->n)
		buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2\" fill=\"#2a6fdb\"/>",
			   x > SPARK_W - 2 ? SPARK_W - 2 : x, y);
	buf_printf(b, "</svg>");
}

static void table(struct buf *b, enum history_kind kind, const char *id, const char *what,
		  const char *unit, time_t now)
{
	const struct history_row *const *rows;
	size_t n = history_rows(kind, &rows);

	buf_printf(b, "<table id=\"%s\"><tr><th>%s</th><th>%s</th><th>last 10 min</th></tr>\n", id,
		   what, unit);
	for (size_t i = 0; i < n; i++) {
		time_t t;
		double rate;

		buf_printf(b, "<tr><td>");
		html_escape(b, rows[i]->name);
		if (rows[i]->n) {
			history_point(rows[i], rows[i]->n - 1, &t, &rate);
			buf_printf(b, "</td><td class=\"num\">%.1f</td><td>", rate);
		} else {
			buf_printf(b, "</td><td class=\"num\">-</td><td>");
		}
		sparkline(b, rows[i], now);
		buf_printf(b, "</td></tr>\n");
	}
	if (!n)
		buf_printf(b, "<tr><td colspan=\"3\">none</td></tr>\n");
	buf_printf(b, "</table>\n");
}

/* Redraws both tables from /status every 5 s, with DOM calls only (names are never parsed as HTML). */
static const char script[] =
	"(function () {\n"
	"var NS = 'http://www.w3.org/2000/svg', W = 120, H = 24, SPAN = %d;\n"
	"function spark(pts) {\n"
	"  var s = document.createElementNS(NS, 'svg'), m = 1, a;\n"
	"  [['class', 'spark'], ['width', W], ['height', H], ['viewBox', '0 0 ' + W + ' ' + H]].forEach(function (kv) { s.setAttribute(kv[0], kv[1]); });\n"
	"  pts.forEach(function (p) { if (p[1] > m) m = p[1]; });\n"
	"  a = pts.map(function (p) { return [W * Math.max(0, 1 - p[0] / SPAN), H - 2 - (H - 4) * p[1] / m]; });\n"
	"  function el(name, attrs) { var e = document.createElementNS(NS, name); attrs.forEach(function (kv) { e.setAttribute(kv[0], kv[1]); }); s.appendChild(e); }\n"
	"  el('line', [['x1', 0], ['y1', H - 1], ['x2', W], ['y2', H - 1], ['stroke', '#ccc']]);\n"
	"  el('polyline', [['fill', 'none'], ['stroke', '#2a6fdb'], ['stroke-width', '1.5'],\n"
	"   ['points', a.map(function (p) { return p[0].toFixed(1) + ',' + p[1].toFixed(1); }).join(' ')]]);\n"
	"  if (a.length) el('circle', [['cx', Math.min(W - 2, a[a.length - 1][0]).toFixed(1)], ['cy', a[a.length - 1][1].toFixed(1)], ['r', 2], ['fill', '#2a6fdb']]);\n"
	"  return s;\n"
	"}\n"
	"function fill(id, rows) {\n"
	"  var t = document.getElementById(id), tr, c;\n"
	"  while (t.rows.length > 1) t.deleteRow(1);\n"
	"  rows.forEach(function (r) {\n"
	"    tr = t.insertRow(); tr.insertCell().textContent = r.name;\n"
	"    c = tr.insertCell(); c.className = 'num'; c.textContent = r.rate === null ? '-' : r.rate.toFixed(1);\n"
	"    tr.insertCell().appendChild(spark(r.points));\n"
	"  });\n"
	"  if (!rows.length) { c = t.insertRow().insertCell(); c.colSpan = 3; c.textContent = 'none'; }\n"
	"}\n"
	"function tick() {\n"
	"  fetch('/status', { cache: 'no-store' }).then(function (r) { return r.json(); }).then(function (d) {\n"
	"    fill('vms', d.history.vms); fill('cgroups', d.history.cgroups);\n"
	"    document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString();\n"
	"  }).catch(function (e) { document.getElementById('updated').textContent = 'update failed: ' + e; });\n"
	"}\n"
	"setInterval(tick, 5000);\n"
	"})();\n";

void landing_render(struct buf *b, const char *telemetry_path, const char *nonce)
{
	const struct probe_status *st;
	int n = probes_status(&st);
	time_t now = time(NULL);

	/* a reader of the live view gets a fresh sample, one per HISTORY_STEP_S at most */
	if (history_due(now))
		metrics_housekeep();
	buf_printf(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>FPU Exporter</title>\n"
		   "<style nonce=\"%s\">body{font-family:sans-serif;margin:1em 2em}"
		   "table{border-collapse:collapse}td,th{padding:2px 10px;text-align:left}"
		   "th{border-bottom:1px solid #999}.num{text-align:right;font-family:monospace}"
		   "#updated{color:#666;font-size:small}</style></head><body>\n"
		   "<h1>FPU Exporter %s</h1>\n"
		   "<p>x86 FPU and KVM guest FPU context switching, as Prometheus metrics.</p>\n"
		   "<ul><li><a href=\"%s\">Metrics</a></li><li><a href=\"/status\">Status</a> (JSON)</li>"
		   "<li><a href=\"/healthz\">Health</a></li></ul>\n",
		   nonce, FPU_EXPORTER_VERSION, telemetry_path);
	buf_printf(b, "<h2>Running VMs</h2>\n");
	table(b, HISTORY_VM, "vms", "VM", "fpu_reload/s", now);
	buf_printf(b, "<h2>Busiest cgroups</h2>\n");
	table(b, HISTORY_CGROUP, "cgroups", "cgroup", "FPU saves/s", now);
	buf_printf(b, "<p id=\"updated\">rates over %d s, one point every %d s at most</p>\n",
		   HISTORY_STEP_S, HISTORY_STEP_S);
	buf_printf(b, "<h2>Probes</h2>\n<ul>\n");
	for (int i = 0; i < n; i++) {
		buf_printf(b, "<li>%s: %s", st[i].probe, st[i].attached ? "attached" : "not attached");
		if (!st[i].attached)
			buf_printf(b, " (%s)", st[i].why);
		buf_printf(b, "</li>\n");
	}
	buf_printf(b, "</ul>\n<script nonce=\"%s\">\n", nonce);
	buf_printf(b, script, SPARK_SPAN);
	buf_printf(b, "</script>\n</body></html>\n");
}

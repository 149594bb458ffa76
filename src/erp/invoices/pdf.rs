//! `GET invoices/{id}/pdf`: an invoice or credit note as a printable A4 PDF.
//!
//! Three steps: [`gather`] reads what the document shows through the access builder (the
//! invoice exactly as `GET invoices/{id}` returns it, so the same 403/404 and the same
//! decimal strings; the party and products only as far as the caller may read them),
//! [`layout`] places text on pages (lines flow onto further pages), and [`render`] writes
//! the PDF with the standard Helvetica fonts (no font file; WinAnsi text, uncompressed
//! content streams).
//!
//! Must not: run SQL outside `Db::read` or around the access builder's checks, format
//! money from floats, or lay out and write the PDF on an async worker thread.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use rusqlite::Connection;
use rust_decimal::Decimal;
use serde_json::Value as Json;

use crate::access::entity::Entity;
use crate::access::query::{self, Viewer};
use crate::app::AppState;
use crate::auth::extract::TenantCaller;
use crate::erp::catalog::PRODUCTS;
use crate::erp::parties::{CUSTOMERS, SUPPLIERS};
use crate::erp::settings;
use crate::error::{Error, Result};
use crate::http::scope::Scope;

/// What the document shows, as the JSON API shows it (decimal strings, never floats).
#[derive(Debug, Clone, Default)]
pub struct InvoiceDoc {
    /// The tenant's display name from the platform catalog; empty: not shown.
    pub issuer: String,
    /// "Invoice" or "Credit note".
    pub title: &'static str,
    /// "Customer" or "Supplier": whom the party block names.
    pub party_label: &'static str,
    pub number: String,
    pub date: String,
    pub due_date: String,
    pub currency: String,
    /// The party's name, then its address lines; the party id when the caller may not
    /// read the party.
    pub party: Vec<String>,
    pub lines: Vec<DocLine>,
    pub subtotal: String,
    pub tax_total: String,
    pub total: String,
    pub amount_due: String,
}

/// One table row: sku, name, quantity, unit price, discount, tax rate, net.
#[derive(Debug, Clone, Default)]
pub struct DocLine(pub [String; 7]);

/// `GET /v1/t/{tenant}/invoices/{id}/pdf` → `application/pdf`, shown inline.
pub async fn read_pdf(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response> {
    let scope = Scope::new(&state, &caller);
    let issuer = caller.record.name.clone();
    let doc = caller
        .tenant
        .db
        .read(move |c| gather(c, &scope, &id, issuer))
        .await?;
    let filename = format!("{}.pdf", safe_filename(&doc.number));
    // Layout and writing take milliseconds for long invoices: on a blocking thread, after
    // the connection went back to the pool.
    let bytes = crate::db::blocking(move || Ok(render(&doc))).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{filename}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// The OpenAPI entry of this endpoint (a PDF body, so not the JSON `add_get` shape).
pub fn add_docs(doc: &mut Json) {
    let param = |name: &str| serde_json::json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } });
    let problem = |d: &str| serde_json::json!({ "description": d, "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } });
    doc["paths"]["/v1/t/{tenant}/invoices/{id}/pdf"] = serde_json::json!({
        "get": { "tags": ["documents"], "summary": "the invoice or credit note as a printable PDF (A4, shown inline)",
                 "security": [{ "bearer": [] }], "parameters": [param("tenant"), param("id")],
                 "responses": { "200": { "description": "the document", "content": { "application/pdf": { "schema": { "type": "string", "format": "binary" } } } },
                                "403": problem("no permission to read invoices"), "404": problem("not found (or not yours)") } },
    });
}

/// Read the invoice as the caller may see it (404/403 as `GET invoices/{id}`), its party
/// and its products.
pub fn gather(c: &Connection, scope: &Scope, id: &str, issuer: String) -> Result<InvoiceDoc> {
    let inv = super::routes::load(c, scope, id)?;
    let settings = settings::enabled(c)?;
    let viewer = scope.viewer(&settings);
    let supplier = text(&inv, "kind") == "supplier";
    let party_id = text(&inv, "party_id");
    let party = match visible(c, scope, &viewer, party_entity(supplier), &party_id)? {
        Some(p) => std::iter::once(text(&p, "name"))
            .chain(text(&p, "address").lines().map(str::to_owned))
            .filter(|l| !l.trim().is_empty())
            .take(8)
            .collect(),
        None => vec![party_id],
    };
    let mut products: HashMap<String, (String, String)> = HashMap::new();
    let mut lines = Vec::new();
    for l in inv["lines"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let pid = text(l, "product_id");
        if !products.contains_key(&pid) {
            let shown = match visible(c, scope, &viewer, &PRODUCTS, &pid)? {
                Some(p) => (text(&p, "sku"), text(&p, "name")),
                None => (String::new(), pid.clone()),
            };
            products.insert(pid.clone(), shown);
        }
        let (sku, name) = products.get(&pid).cloned().unwrap_or_default();
        lines.push(DocLine([
            sku,
            name,
            text(l, "quantity"),
            text(l, "unit_price"),
            percent(&text(l, "discount_percent")),
            percent(&text(l, "tax_rate")),
            text(l, "net"),
        ]));
    }
    let credit = inv.get("credit_of").is_some_and(|v| !v.is_null());
    Ok(InvoiceDoc {
        issuer,
        title: if credit { "Credit note" } else { "Invoice" },
        party_label: if supplier { "Supplier" } else { "Customer" },
        number: text(&inv, "number"),
        date: text(&inv, "date"),
        due_date: text(&inv, "due_date"),
        currency: text(&inv, "currency"),
        party,
        lines,
        subtotal: text(&inv, "subtotal"),
        tax_total: text(&inv, "tax_total"),
        total: text(&inv, "total"),
        amount_due: text(&inv, "amount_due"),
    })
}

fn party_entity(supplier: bool) -> &'static Entity {
    if supplier { &SUPPLIERS } else { &CUSTOMERS }
}

fn text(v: &Json, key: &str) -> String {
    v.get(key)
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A record through the access builder, or `None` when the caller may not see it (no read
/// permission, a record rule, or deleted without the right to see deleted rows).
fn visible(
    c: &Connection,
    scope: &Scope,
    viewer: &Viewer<'_>,
    entity: &'static Entity,
    id: &str,
) -> Result<Option<Json>> {
    let deleted = viewer.perms.allows(entity.name, "delete");
    match query::by_id(entity, viewer, id, deleted) {
        Ok(q) => Ok(query::fetch_one(c, &q, &scope.ctx())?.map(Json::Object)),
        Err(Error::Forbidden(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A rate fraction as the API gives it (`"0.2"`) shown as a percentage (`"20%"`), exactly.
fn percent(fraction: &str) -> String {
    fraction
        .parse::<Decimal>()
        .ok()
        .and_then(|d| d.checked_mul(Decimal::ONE_HUNDRED))
        .map_or_else(|| fraction.to_owned(), |p| format!("{}%", p.normalize()))
}

/// The number as a file name: anything but `[A-Za-z0-9._-]` becomes `_`.
fn safe_filename(number: &str) -> String {
    let s: String = number
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "invoice".into() } else { s }
}

/// Text in the fonts' WinAnsi encoding: Latin-1 and the Windows-1252 extras (€, dashes,
/// curly quotes…) map to their byte; line breaks and tabs become spaces; anything
/// Helvetica cannot show becomes `?`. PDF string syntax (parentheses, backslashes) is
/// escaped later, by `pdf_writer::Str`.
pub fn win_ansi(s: &str) -> Vec<u8> {
    #[rustfmt::skip]
    const EXTRAS: [(char, u8); 27] = [
        ('€', 0x80), ('‚', 0x82), ('ƒ', 0x83), ('„', 0x84), ('…', 0x85), ('†', 0x86),
        ('‡', 0x87), ('ˆ', 0x88), ('‰', 0x89), ('Š', 0x8A), ('‹', 0x8B), ('Œ', 0x8C),
        ('Ž', 0x8E), ('‘', 0x91), ('’', 0x92), ('“', 0x93), ('”', 0x94), ('•', 0x95),
        ('–', 0x96), ('—', 0x97), ('˜', 0x98), ('™', 0x99), ('š', 0x9A), ('›', 0x9B),
        ('œ', 0x9C), ('ž', 0x9E), ('Ÿ', 0x9F),
    ];
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => b' ',
            ' '..='~' | '\u{A0}'..='\u{FF}' => u8::try_from(u32::from(c)).unwrap_or(b'?'),
            _ => EXTRAS
                .iter()
                .find(|(e, _)| *e == c)
                .map_or(b'?', |(_, b)| *b),
        })
        .collect()
}

/// Advance widths (1/1000 em) of bytes 32..=126 in Helvetica and Helvetica-Bold (their
/// AFM files); other bytes count as an average letter.
#[rustfmt::skip]
const WIDTHS: [[u16; 95]; 2] = [[
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
], [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611,
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556,
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
]];

/// The width of WinAnsi text at `size` points.
fn width(text: &[u8], size: f32, bold: bool) -> f32 {
    let table = &WIDTHS[usize::from(bold)];
    let units: u32 = text
        .iter()
        .map(|&b| match b {
            32..=126 => u32::from(table[usize::from(b - 32)]),
            0x85 => 1000,
            _ if bold => 611,
            _ => 556,
        })
        .sum();
    units as f32 * size / 1000.0
}

/// `text` cut to `max` points, ending in an ellipsis when cut.
fn fit(text: &[u8], max: f32, size: f32, bold: bool) -> Vec<u8> {
    if width(text, size, bold) <= max {
        return text.to_vec();
    }
    let mut out = text.to_vec();
    while !out.is_empty() && width(&out, size, bold) + width(&[0x85], size, bold) > max {
        out.pop();
    }
    out.push(0x85);
    out
}

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const LEFT: f32 = 50.0;
const RIGHT: f32 = 545.0;
const TOP: f32 = 792.0;
/// Lines stop above this; the footer sits below it.
const BOTTOM: f32 = 70.0;
const ROW: f32 = 13.0;
const BODY: f32 = 9.0;
/// Space the totals block needs below the last line.
const TOTALS: f32 = 5.0 * 14.0 + 10.0;
/// Table columns: x (the right edge for right-aligned ones), right-aligned, widest text.
const COLS: [(f32, bool, f32); 7] = [
    (LEFT, false, 68.0),
    (122.0, false, 160.0),
    (330.0, true, 45.0),
    (395.0, true, 60.0),
    (435.0, true, 38.0),
    (475.0, true, 38.0),
    (RIGHT, true, 66.0),
];
const HEADINGS: [&str; 7] = ["SKU", "Product", "Qty", "Unit price", "Disc.", "Tax", "Net"];

/// Text on a page: its baseline starts at (`x`, `y`) in points from the bottom left, in
/// Helvetica (or Helvetica-Bold) at `size` points; `text` is WinAnsi bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub x: f32,
    pub y: f32,
    pub size: f32,
    pub bold: bool,
    pub text: Vec<u8>,
}

/// One thing drawn on a page.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Text(Run),
    /// A thin horizontal rule across the text width at this height.
    Rule(f32),
}

/// Pages being filled, top to bottom.
struct Layout {
    pages: Vec<Vec<Op>>,
    y: f32,
}

impl Layout {
    fn put(&mut self, x: f32, y: f32, size: f32, bold: bool, text: Vec<u8>) {
        let run = Run {
            x,
            y,
            size,
            bold,
            text,
        };
        match self.pages.last_mut() {
            Some(page) => page.push(Op::Text(run)),
            None => self.pages.push(vec![Op::Text(run)]),
        }
    }
    fn at(&mut self, x: f32, y: f32, size: f32, bold: bool, text: &str) {
        self.put(x, y, size, bold, win_ansi(text));
    }
    /// Text ending at `right`, cut to `max` points.
    fn right(&mut self, right: f32, y: f32, size: f32, bold: bool, text: &str, max: f32) {
        let text = fit(&win_ansi(text), max, size, bold);
        self.put(right - width(&text, size, bold), y, size, bold, text);
    }
    fn rule(&mut self, y: f32) {
        if let Some(page) = self.pages.last_mut() {
            page.push(Op::Rule(y));
        }
    }
    fn row(&mut self, cells: &[String; 7], bold: bool) {
        let y = self.y;
        for ((x, right, max), cell) in COLS.iter().zip(cells) {
            if *right {
                self.right(*x, y, BODY, bold, cell, *max);
            } else {
                self.put(*x, y, BODY, bold, fit(&win_ansi(cell), *max, BODY, bold));
            }
        }
        self.y -= ROW;
    }
    fn table_head(&mut self) {
        self.row(&HEADINGS.map(str::to_owned), true);
        self.rule(self.y + ROW - 3.0);
    }
    /// A new page headed with the document's title and number, and the table head.
    fn continue_on_new_page(&mut self, doc: &InvoiceDoc) {
        self.pages.push(Vec::new());
        let head = format!("{} {} (continued)", doc.title, doc.number);
        self.at(LEFT, TOP, 10.0, true, &head);
        self.y = TOP - 24.0;
    }
}

/// Place the document on pages: header, party, lines (flowing onto further pages with
/// the table head repeated), totals. Page footers are added by [`render`].
pub fn layout(doc: &InvoiceDoc) -> Vec<Vec<Op>> {
    let mut l = Layout {
        pages: vec![Vec::new()],
        y: TOP,
    };
    if !doc.issuer.is_empty() {
        l.put(
            LEFT,
            TOP,
            14.0,
            true,
            fit(&win_ansi(&doc.issuer), 300.0, 14.0, true),
        );
    }
    l.right(RIGHT, TOP, 18.0, true, doc.title, 200.0);
    let facts = [
        ("Number", &doc.number),
        ("Date", &doc.date),
        ("Due date", &doc.due_date),
        ("Currency", &doc.currency),
    ];
    let mut y = TOP - 26.0;
    for (label, value) in facts {
        l.at(380.0, y, BODY, true, label);
        l.right(RIGHT, y, BODY, false, value, 110.0);
        y -= ROW;
    }
    let mut py = TOP - 26.0;
    l.at(LEFT, py, BODY, true, doc.party_label);
    for (i, line) in doc.party.iter().enumerate() {
        py -= ROW;
        l.put(
            LEFT,
            py,
            10.0,
            i == 0,
            fit(&win_ansi(line), 300.0, 10.0, i == 0),
        );
    }
    l.y = py.min(y) - 24.0;
    l.table_head();
    for line in &doc.lines {
        if l.y < BOTTOM {
            l.continue_on_new_page(doc);
            l.table_head();
        }
        l.row(&line.0, false);
    }
    l.rule(l.y + ROW - 3.0);
    if l.y - TOTALS < BOTTOM {
        l.continue_on_new_page(doc);
    }
    let totals = [
        ("Subtotal", &doc.subtotal, false),
        ("Tax", &doc.tax_total, false),
        ("Total", &doc.total, true),
        ("Amount due", &doc.amount_due, true),
    ];
    let mut y = l.y - 8.0;
    for (label, value, bold) in totals {
        l.at(380.0, y, 10.0, bold, label);
        let amount = format!("{value} {}", doc.currency);
        l.right(RIGHT, y, 10.0, bold, &amount, 100.0);
        y -= 14.0;
    }
    l.pages
}

/// The finished PDF: one page object and one uncompressed content stream per page, and
/// Helvetica / Helvetica-Bold with WinAnsiEncoding (base-14 fonts: nothing embedded).
pub fn render(doc: &InvoiceDoc) -> Vec<u8> {
    let pages = layout(doc);
    let n = pages.len();
    let [catalog, tree, regular, bold, info] = [1, 2, 3, 4, 5].map(Ref::new);
    let page_ref = |i: usize| Ref::new(6 + 2 * i as i32);
    let content_ref = |i: usize| Ref::new(7 + 2 * i as i32);
    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids((0..n).map(page_ref))
        .count(i32::try_from(n).unwrap_or(i32::MAX));
    for (i, ops) in pages.iter().enumerate() {
        let mut page = pdf.page(page_ref(i));
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
        page.parent(tree);
        page.contents(content_ref(i));
        page.resources()
            .fonts()
            .pair(Name(b"F1"), regular)
            .pair(Name(b"F2"), bold);
        page.finish();
        let mut c = Content::new();
        let mut footer = Layout {
            pages: vec![Vec::new()],
            y: 0.0,
        };
        let text = format!("{} {} \u{b7} page {} of {n}", doc.title, doc.number, i + 1);
        footer.at(LEFT, 40.0, 8.0, false, &text);
        for op in ops.iter().chain(footer.pages.iter().flatten()) {
            match op {
                Op::Text(r) => {
                    c.begin_text();
                    c.set_font(Name(if r.bold { b"F2" } else { b"F1" }), r.size);
                    c.next_line(r.x, r.y);
                    c.show(Str(&r.text));
                    c.end_text();
                }
                Op::Rule(y) => {
                    c.set_line_width(0.5);
                    c.move_to(LEFT, *y);
                    c.line_to(RIGHT, *y);
                    c.stroke();
                }
            }
        }
        pdf.stream(content_ref(i), &c.finish());
    }
    for (id, name) in [(regular, &b"Helvetica"[..]), (bold, &b"Helvetica-Bold"[..])] {
        pdf.type1_font(id)
            .base_font(Name(name))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    let title = format!("{} {}", doc.title, doc.number);
    pdf.document_info(info)
        .title(TextStr(&title))
        .producer(TextStr("erpd"));
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parse one PDF literal string `( … )` at the start of `b` (nesting, escapes and
    /// octal codes as ISO 32000 §7.3.4.2 reads them); `None` if it is not well formed.
    fn parse_literal(b: &[u8]) -> Option<Vec<u8>> {
        let mut it = b.iter().copied().peekable();
        if it.next()? != b'(' {
            return None;
        }
        let (mut out, mut depth) = (Vec::new(), 1);
        while let Some(c) = it.next() {
            match c {
                b'\\' => match it.next()? {
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    d @ b'0'..=b'7' => {
                        let mut v = u32::from(d - b'0');
                        for _ in 0..2 {
                            match it.peek() {
                                Some(&n @ b'0'..=b'7') => {
                                    v = v * 8 + u32::from(n - b'0');
                                    it.next();
                                }
                                _ => break,
                            }
                        }
                        out.push(u8::try_from(v).ok()?);
                    }
                    other => out.push(other),
                },
                b'(' => {
                    depth += 1;
                    out.push(c);
                }
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(out);
                    }
                    out.push(c);
                }
                _ => out.push(c),
            }
        }
        None
    }

    /// What `show` writes for `s`, read back as a PDF reader reads it.
    fn round_trip(s: &str) -> Vec<u8> {
        let mut c = Content::new();
        c.show(Str(&win_ansi(s)));
        let bytes = c.finish().into_vec();
        if let Some(hex) = bytes.strip_prefix(b"<") {
            // A hex string: how bytes above 0x7F are written.
            let end = hex
                .iter()
                .position(|&b| b == b'>')
                .expect("hex string ends");
            return hex[..end]
                .chunks(2)
                .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
                .collect();
        }
        parse_literal(&bytes).unwrap_or_else(|| panic!("not a PDF string: {bytes:?}"))
    }

    #[test]
    fn hostile_strings_survive_pdf_string_syntax() {
        for s in [
            r"Ada (O'Brien) \ Co",
            ")(",
            "((",
            r"trailing \",
            r"\)",
            "a) b (c",
            "Caf\u{e9} \u{20ac}5 (x",
        ] {
            assert_eq!(round_trip(s), win_ansi(s), "{s:?}");
        }
    }

    #[test]
    fn text_is_encoded_as_win_ansi_with_question_marks_for_the_rest() {
        assert_eq!(win_ansi("Ada & Co"), b"Ada & Co");
        assert_eq!(
            win_ansi("Caf\u{e9} \u{fc}"),
            [b'C', b'a', b'f', 0xE9, b' ', 0xFC]
        );
        assert_eq!(
            win_ansi("\u{20ac}\u{2013}\u{201c}\u{2122}"),
            [0x80, 0x96, 0x93, 0x99]
        );
        assert_eq!(
            win_ansi("\u{6771}\u{4eac} \u{410}\u{434}\u{430}"),
            b"?? ???"
        );
        assert_eq!(win_ansi("a\nb\tc\r"), b"a b c ");
        assert_eq!(win_ansi("\u{1}\u{7f}\u{81}\u{1F600}"), b"????");
    }

    #[test]
    fn rates_show_as_exact_percentages() {
        assert_eq!(percent("0.2"), "20%");
        assert_eq!(percent("0.055"), "5.5%");
        assert_eq!(percent("0"), "0%");
        assert_eq!(percent("oops"), "oops");
    }

    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(safe_filename("INV-2026-000001"), "INV-2026-000001");
        assert_eq!(safe_filename("a\"/b c"), "a__b_c");
        assert_eq!(safe_filename(""), "invoice");
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        let long = win_ansi(&"W".repeat(100));
        let cut = fit(&long, 60.0, BODY, false);
        assert!(width(&cut, BODY, false) <= 60.0);
        assert_eq!(cut.last(), Some(&0x85));
        assert_eq!(fit(b"short", 60.0, BODY, false), b"short");
    }

    fn doc(lines: usize) -> InvoiceDoc {
        InvoiceDoc {
            issuer: r"Shop (€) \ Ltd".into(),
            title: "Invoice",
            party_label: "Customer",
            number: "INV-2026-000001".into(),
            date: "2026-03-01".into(),
            due_date: "2026-03-31".into(),
            currency: "EUR".into(),
            party: vec![r"Ada (O'Brien) \ Co".into(), "1 Main St".into()],
            lines: (0..lines)
                .map(|i| {
                    DocLine([
                        format!("W-{i}"),
                        "Widget".into(),
                        "1".into(),
                        "10.00".into(),
                        "0%".into(),
                        "20%".into(),
                        "10.00".into(),
                    ])
                })
                .collect(),
            subtotal: format!("{lines}0.00"),
            tax_total: format!("{}.00", lines * 2),
            total: format!("{}.00", lines * 12),
            amount_due: format!("{}.00", lines * 12),
        }
    }

    fn texts(pages: &[Vec<Op>]) -> Vec<Vec<u8>> {
        pages
            .iter()
            .flatten()
            .filter_map(|op| match op {
                Op::Text(r) => Some(r.text.clone()),
                Op::Rule(_) => None,
            })
            .collect()
    }

    #[test]
    fn many_lines_flow_onto_further_pages_and_every_line_is_placed() {
        let pages = layout(&doc(120));
        assert!(pages.len() > 1, "{} pages", pages.len());
        let t = texts(&pages);
        for i in 0..120 {
            assert!(
                t.contains(&format!("W-{i}").into_bytes()),
                "line {i} missing"
            );
        }
        assert!(t.contains(&b"1440.00 EUR".to_vec()));
        for op in pages.iter().flatten() {
            if let Op::Text(r) = op {
                assert!((LEFT - 1.0..=RIGHT + 1.0).contains(&r.x), "x {}", r.x);
                assert!((BOTTOM - ROW..=TOP).contains(&r.y), "y {}", r.y);
            }
        }
    }

    #[test]
    fn a_short_invoice_is_one_page() {
        assert_eq!(layout(&doc(3)).len(), 1);
    }

    #[test]
    fn the_rendered_document_parses_with_all_its_pages() {
        let bytes = render(&doc(120));
        assert!(bytes.starts_with(b"%PDF-"));
        let parsed = lopdf::Document::load_mem(&bytes).expect("the PDF parses");
        assert_eq!(parsed.get_pages().len(), layout(&doc(120)).len());
    }
}

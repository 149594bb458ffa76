//! `GET invoices/{id}/pdf`: the invoice as a PDF (number, total, party, lines flowing onto
//! further pages), safe for hostile names, and read under the same access as
//! `GET invoices/{id}`.

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::sales::Shop;

/// The posted invoice of a confirmed sales order of `lines` service lines to `customer`.
async fn invoice(s: &Shop, customer: &str, lines: usize) -> Value {
    let ls: Vec<Value> = (0..lines)
        .map(|i| json!({"product_id": s.service, "quantity": format!("{}", i % 3 + 1)}))
        .collect();
    let order = s.order("sales-orders", customer, json!(ls)).await;
    let id = order["id"].as_str().expect("order id");
    s.post_ok(&format!("sales-orders/{id}/confirm"), &json!({}), 200)
        .await;
    s.post_ok(&format!("sales-orders/{id}/invoice"), &json!({}), 201)
        .await
}

/// `GET invoices/{id}/pdf` as the owner: headers and the raw bytes.
async fn pdf(s: &Shop, invoice: &Value) -> (u16, HeaderMap, Vec<u8>) {
    let id = invoice["id"].as_str().expect("invoice id");
    let path = s.t.path(&format!("invoices/{id}/pdf"));
    let resp =
        s.t.app
            .request(Method::GET, &path)
            .bearer_auth(&s.t.owner)
            .send()
            .await
            .expect("GET pdf");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.expect("body").to_vec();
    (status, headers, body)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// `/Type /Page` objects (not the `/Type /Pages` tree).
fn page_objects(pdf: &[u8]) -> usize {
    let key = b"/Type /Page";
    pdf.windows(key.len() + 1)
        .filter(|w| &w[..key.len()] == key && w[key.len()] != b's')
        .count()
}

/// Checks the envelope and parses the document; returns it.
fn parse(bytes: &[u8]) -> lopdf::Document {
    assert!(
        bytes.starts_with(b"%PDF-"),
        "{:?}",
        &bytes[..20.min(bytes.len())]
    );
    assert!(bytes.trim_ascii_end().ends_with(b"%%EOF"));
    lopdf::Document::load_mem(bytes).expect("the PDF parses")
}

#[tokio::test]
async fn an_invoice_pdf_shows_its_number_party_lines_and_total() {
    let s = Shop::new("pdf").await;
    let inv = invoice(&s, &s.customer, 2).await;

    let (status, headers, body) = pdf(&s, &inv).await;

    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["content-type"], "application/pdf");
    let number = inv["number"].as_str().unwrap();
    assert_eq!(
        headers["content-disposition"].to_str().unwrap(),
        format!("inline; filename=\"{number}.pdf\"")
    );
    let doc = parse(&body);
    assert_eq!(doc.get_pages().len(), 1);
    assert_eq!(page_objects(&body), 1);
    // Content streams are not compressed: the text is in the bytes as the API shows it.
    let total = inv["total"].as_str().unwrap();
    assert_eq!(total, "180.00");
    for text in [
        number,
        "Invoice",
        "Tenant pdf",
        "Ada",
        "S-1",
        "Installation",
        "150.00",
        "30.00",
        total,
        "EUR",
        "20%",
    ] {
        assert!(contains(&body, text), "{text:?} is not in the PDF");
    }
}

#[tokio::test]
async fn a_credit_note_pdf_is_titled_credit_note() {
    let s = Shop::new("pdfcn").await;
    let inv = invoice(&s, &s.customer, 1).await;
    let id = inv["id"].as_str().unwrap();
    let note = s
        .post_ok(&format!("invoices/{id}/credit"), &json!({}), 201)
        .await;

    let (status, _, body) = pdf(&s, &note).await;

    assert_eq!(status, 200);
    parse(&body);
    assert!(contains(&body, "Credit note"));
    assert!(contains(&body, note["number"].as_str().unwrap()));
}

#[tokio::test]
async fn a_long_invoice_flows_onto_further_pages() {
    let s = Shop::new("pdflong").await;
    let inv = invoice(&s, &s.customer, 120).await;
    assert_eq!(inv["lines"].as_array().unwrap().len(), 120);

    let (status, _, body) = pdf(&s, &inv).await;

    assert_eq!(status, 200);
    let doc = parse(&body);
    let pages = page_objects(&body);
    assert!(pages > 1, "{pages} pages");
    assert_eq!(doc.get_pages().len(), pages);
    assert!(contains(&body, inv["total"].as_str().unwrap()));
    assert!(contains(&body, "(continued)"));
}

#[tokio::test]
async fn a_hostile_party_name_does_not_break_the_pdf() {
    let s = Shop::new("pdfhostile").await;
    let name = r"Ada (O'Brien) \ Co ) ((";
    let customer = s
        .post_ok(
            "customers",
            &json!({"name": name, "address": "1 Main St\n\u{6771}\u{4eac} \\\nEndstr. 5 \u{20ac}"}),
            201,
        )
        .await;
    let inv = invoice(&s, customer["id"].as_str().unwrap(), 1).await;

    let (status, _, body) = pdf(&s, &inv).await;

    assert_eq!(status, 200);
    let doc = parse(&body);
    assert_eq!(doc.get_pages().len(), 1);
    let text = doc.extract_text(&[1]).expect("text of page 1");
    assert!(text.contains(name), "{text}");
    assert!(text.contains("?? \\"), "non-Latin-1 shows as '?': {text}");
    assert!(contains(&body, inv["number"].as_str().unwrap()));
}

#[tokio::test]
async fn unknown_and_other_tenants_invoices_are_404() {
    let s = Shop::new("pdf404").await;
    let inv = invoice(&s, &s.customer, 1).await;
    let id = inv["id"].as_str().unwrap();
    let other = s.t.app.create_tenant_ok("pdf-other").await;

    let unknown =
        s.t.app
            .get(&s.t.path("invoices/no-such-invoice/pdf"), &s.t.owner)
            .await;
    let foreign =
        s.t.app
            .get(&format!("/v1/t/pdf-other/invoices/{id}/pdf"), &other)
            .await;

    unknown.assert_problem(404);
    foreign.assert_problem(404);
}

#[tokio::test]
async fn a_role_without_invoices_read_gets_403() {
    let s = Shop::new("pdf403").await;
    let inv = invoice(&s, &s.customer, 1).await;
    let (_, warehouse) = s.t.user("stock@example.com", &["warehouse"]).await;
    let path =
        s.t.path(&format!("invoices/{}/pdf", inv["id"].as_str().unwrap()));

    let resp = s.t.app.get(&path, &warehouse).await;

    resp.assert_problem(403);
}

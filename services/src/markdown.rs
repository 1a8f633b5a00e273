//! Markdown rendered for the editor's preview, safe to put in the page as it is: raw HTML in
//! the source is shown as text (never as markup), and links and images keep only `http`,
//! `https` and `mailto` URLs or relative ones — `javascript:`, `data:` and the like become
//! `#`. CommonMark with GitHub's tables, strikethrough, task lists and footnotes.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, html};

/// Largest source rendered (a preview of a larger file is refused).
pub const MAX_MARKDOWN: usize = 1024 * 1024;

impl crate::Services {
    /// `text` rendered for the editor's preview; refused past [`MAX_MARKDOWN`] bytes.
    pub fn markdown(&self, text: &str) -> crate::Result<model::Preview> {
        if text.len() > MAX_MARKDOWN {
            return Err(crate::Error::TooLarge(format!(
                "a preview is made of at most {} KiB of Markdown",
                MAX_MARKDOWN / 1024
            )));
        }
        Ok(model::Preview {
            html: to_html(text),
        })
    }
}

pub fn to_html(source: &str) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let events = Parser::new_ext(source, options).map(|event| match event {
        Event::Html(markup) | Event::InlineHtml(markup) => Event::Text(markup),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Image {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        other => other,
    });
    let mut out = String::with_capacity(source.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

/// `url` if it is relative or `http`, `https` or `mailto`; `#` otherwise. Judged as a
/// browser reads it: whitespace and control characters (which browsers drop inside a
/// scheme, so `java\tscript:` is `javascript:`) are removed first.
fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let squeezed: String = url
        .chars()
        .filter(|char| !char.is_ascii_whitespace() && !char.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    let scheme_end = squeezed.find([':', '/', '?', '#']);
    let scheme = match scheme_end {
        Some(end) if squeezed[end..].starts_with(':') => Some(&squeezed[..end]),
        _ => None,
    };
    match scheme {
        None | Some("http" | "https" | "mailto") => url,
        Some(_) => CowStr::Borrowed("#"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_renders_with_tables_and_task_lists() {
        let html =
            to_html("# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- [x] done\n\n~~old~~ *new*\n");
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(
            html.contains("<table>") && html.contains("<td>1</td>"),
            "{html}"
        );
        assert!(html.contains("checkbox"), "{html}");
        assert!(html.contains("<del>old</del> <em>new</em>"), "{html}");
    }

    #[test]
    fn raw_html_and_script_urls_never_reach_the_page() {
        let html = to_html(
            "<script>alert(1)</script>\n\nhi <img src=x onerror=alert(2)> there\n\n\
             [a](javascript:alert(3)) [b](<JAVA\tSCRIPT:alert(4)>) [c](data:text/html,x) \
             ![d](vbscript:x) [e](https://example.org/x?y=1) [f](notes.md#part) [g](mailto:a@b.c)\n",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<img src=\"x\""), "{html}");
        assert!(
            html.contains("&lt;img src=x onerror=alert(2)&gt;"),
            "{html}"
        );
        // Every URL in an attribute is one of the kept kinds.
        let urls: Vec<&str> = html
            .split(['"'])
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|pair| pair[0].ends_with("href=") || pair[0].ends_with("src="))
            .map(|pair| pair[1])
            .collect();
        assert_eq!(urls.len(), 7, "{html}");
        for url in urls {
            assert!(
                url == "#"
                    || url.starts_with("https:")
                    || url.starts_with("mailto:")
                    || url == "notes.md#part",
                "{url} in {html}"
            );
        }
        assert!(
            html.contains("href=\"https://example.org/x?y=1\""),
            "{html}"
        );
        assert!(html.contains("href=\"notes.md#part\""), "{html}");
        assert!(html.contains("href=\"mailto:a@b.c\""), "{html}");
        assert_eq!(html.matches("href=\"#\"").count(), 3, "{html}");
    }
}

//! Page templates (askama).
//!
//! Every page extends `templates/base.html`, which links the single stylesheet
//! [`VALET_CSS`] at `/static/valet.css`. The pages use no JavaScript, no inline
//! styles and no external resources, so they work under the CSP
//! `default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self' …;
//! frame-ancestors 'none'`. All interpolated values are HTML-escaped by askama.
//!
//! Render with [`askama::Template::render`].

use askama::Template;

/// The stylesheet for every page; serve it at `/static/valet.css` as `text/css`.
pub const VALET_CSS: &str = include_str!("../../static/valet.css");

/// The path at which pages expect [`VALET_CSS`] to be served.
pub const VALET_CSS_PATH: &str = "/static/valet.css";

/// One requested scope, as shown on the consent pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeLine {
    /// The scope's wire name, e.g. `api` (shown small and muted).
    pub name: String,
    /// A human description, e.g. "Access and manage your data".
    pub description: String,
    /// For a privileged scope (`full`, `valet_admin`), what it really grants, shown as a
    /// warning.
    pub warning: Option<String>,
}

impl ScopeLine {
    /// The lines of a set of scopes, in the set's order.
    pub fn all(scopes: &valet_core::scope::ScopeSet) -> Vec<ScopeLine> {
        scopes
            .descriptions()
            .into_iter()
            .map(|(n, d)| ScopeLine {
                name: n.to_string(),
                description: d.to_string(),
                warning: valet_core::scope::privileged_warning(n).map(str::to_string),
            })
            .collect()
    }
}

/// `GET /login`: username/password form.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub org_name: String,
    /// Prefilled username (from `login_hint`); may be empty.
    pub username: String,
    /// Shown in an alert (role="alert").
    pub error: Option<String>,
    /// Shown in a neutral box, e.g. "You have been logged out".
    pub notice: Option<String>,
    pub csrf: String,
    /// Posted back as the hidden field `continue`.
    pub continue_to: String,
}

/// OAuth authorize consent ("Allow Access?").
#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage {
    pub app_name: String,
    pub user_display: String,
    pub username: String,
    pub scopes: Vec<ScopeLine>,
    pub csrf: String,
    /// Opaque (urlencoded) authorize request, posted back as hidden `request`.
    pub request: String,
    /// Binds `request` to this browser session (posted back as `request_tag`).
    pub request_tag: String,
    /// The app registered itself (RFC 7591): show the "unverified application" notice.
    pub unverified: bool,
}

/// `GET /logout`: confirm logout.
#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage {
    pub user_display: String,
    pub csrf: String,
}

/// After logout.
#[derive(Template)]
#[template(path = "logged_out.html")]
pub struct LoggedOutPage {
    /// Single logout URLs the browser loads (front-channel logout); https only.
    pub front_channel: Vec<String>,
}

/// A human-readable error page. All values are untrusted and escaped.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub title: String,
    pub error: String,
    pub description: String,
}

/// `GET /`.
#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub user_display: Option<String>,
    pub username: Option<String>,
    pub org_name: String,
}

/// Device flow verification page (`/setup/connect`).
#[derive(Template)]
#[template(path = "device.html")]
pub struct DevicePage {
    pub csrf: String,
    /// Prefilled user code; may be empty.
    pub user_code: String,
    pub error: Option<String>,
    pub notice: Option<String>,
}

/// Device flow consent, posted to `/setup/connect/approve`.
#[derive(Template)]
#[template(path = "device_consent.html")]
pub struct DeviceConsentPage {
    pub app_name: String,
    pub scopes: Vec<ScopeLine>,
    pub csrf: String,
    pub user_code: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value that would break out of text and of a double- or single-quoted
    /// attribute if it were not escaped.
    const EVIL: &str = "\"'><script>alert(1)</script>&x";
    const EVIL_ESCAPED: &str = "&quot;&#x27;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;x";

    fn evil(tag: &str) -> String {
        format!("{tag}{EVIL}")
    }

    fn escaped(tag: &str) -> String {
        format!("{tag}{EVIL_ESCAPED}")
    }

    /// Common checks for every page.
    fn check_page(html: &str) {
        assert!(html.starts_with("<!DOCTYPE html>"), "doctype");
        assert!(html.contains("<html lang=\"en\">"), "lang attribute");
        assert!(html.contains("<main"), "main landmark");
        assert_eq!(html.matches("<h1").count(), 1, "exactly one h1");
        assert!(html.contains("<link rel=\"stylesheet\" href=\"/static/valet.css\">"), "stylesheet link");
        assert!(!html.contains("<script"), "no (unescaped) script tags");
        assert!(!html.contains("style="), "no inline styles (CSP)");
        assert!(!html.contains("<style"), "no style elements (CSP)");
        assert!(!html.contains("http://") && !html.contains("https://"), "no external resources");
        assert!(!html.contains(EVIL), "raw hostile value leaked");
    }

    /// Every `<label for=X>` must point at an element with `id=X`.
    fn check_labels(html: &str) {
        for part in html.split("<label for=\"").skip(1) {
            let id = part.split('"').next().unwrap_or_default();
            assert!(!id.is_empty());
            assert!(html.contains(&format!("id=\"{id}\"")), "label for={id} has no target");
        }
    }

    fn scopes() -> Vec<ScopeLine> {
        vec![
            ScopeLine { name: evil("scope-name"), description: evil("scope-desc"), warning: Some(evil("warn")) },
            ScopeLine {
                name: "refresh_token".into(),
                description: "Perform requests at any time".into(),
                warning: None,
            },
        ]
    }

    #[test]
    fn login_page_escapes_and_has_fields() -> Result<(), askama::Error> {
        let html = LoginPage {
            org_name: evil("org"),
            username: evil("user"),
            error: Some(evil("err")),
            notice: Some(evil("notice")),
            csrf: evil("csrf"),
            continue_to: evil("cont"),
        }
        .render()?;
        check_page(&html);
        check_labels(&html);
        assert!(html.contains(&format!("Log in to {}", escaped("org"))));
        assert!(html.contains("<form class=\"form\" method=\"post\" action=\"/login\">"));
        assert!(html.contains(&format!("name=\"username\" type=\"text\" value=\"{}\"", escaped("user"))));
        assert!(html.contains("autocomplete=\"username\""));
        assert!(html.contains("name=\"password\" type=\"password\" autocomplete=\"current-password\""));
        assert!(html.contains(&format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", escaped("csrf"))));
        assert!(html.contains(&format!("<input type=\"hidden\" name=\"continue\" value=\"{}\">", escaped("cont"))));
        assert!(html.contains("role=\"alert\""));
        assert!(html.contains(&escaped("err")));
        assert!(html.contains(&escaped("notice")));
        assert!(html.contains("aria-invalid=\"true\""));
        assert!(html.contains(">Log In</button>"));
        Ok(())
    }

    #[test]
    fn login_page_without_messages() -> Result<(), askama::Error> {
        let html = LoginPage {
            org_name: "Acme".into(),
            username: String::new(),
            error: None,
            notice: None,
            csrf: "c".into(),
            continue_to: "/".into(),
        }
        .render()?;
        check_page(&html);
        assert!(!html.contains("role=\"alert\""));
        assert!(!html.contains("role=\"status\""));
        assert!(!html.contains("aria-invalid"));
        assert!(html.contains("value=\"\" autocomplete=\"username\""));
        Ok(())
    }

    #[test]
    fn consent_page_escapes_and_has_fields() -> Result<(), askama::Error> {
        let request = "response_type=code&client_id=abc&redirect_uri=https%3A%2F%2Fx";
        let html = ConsentPage {
            app_name: evil("app"),
            user_display: evil("disp"),
            username: evil("uname"),
            scopes: scopes(),
            csrf: evil("csrf"),
            request: request.into(),
            request_tag: evil("tag"),
            unverified: true,
        }
        .render()?;
        // The request contains an (escaped) https URL; check the rest without it.
        check_page(&html.replace("https%3A%2F%2Fx", ""));
        assert!(html.contains("<h1>Allow Access?</h1>"));
        assert!(html.contains(&format!("{}</strong> is asking to:", escaped("app"))));
        assert!(html.contains(&escaped("scope-name")));
        assert!(html.contains(&escaped("scope-desc")));
        assert!(html.contains(&escaped("warn")), "a privileged scope's warning");
        assert!(html.contains(&escaped("tag")), "the request tag");
        assert!(html.contains("Unverified application"));
        assert!(html.contains("Perform requests at any time"));
        assert!(html.contains(&escaped("disp")));
        assert!(html.contains(&escaped("uname")));
        assert!(html.contains("You're signed in as <strong>"));
        assert!(html.contains("<a href=\"/logout\">Not you?</a>"));
        assert!(html.contains("method=\"post\" action=\"/services/oauth2/authorize/consent\""));
        assert!(html.contains(&format!("name=\"csrf\" value=\"{}\"", escaped("csrf"))));
        assert!(html.contains(
            "name=\"request\" value=\"response_type=code&amp;client_id=abc&amp;redirect_uri=https%3A%2F%2Fx\""
        ));
        let allow = html.find("name=\"decision\" value=\"allow\">Allow</button>");
        let deny = html.find("name=\"decision\" value=\"deny\">Deny</button>");
        assert!(matches!((allow, deny), (Some(a), Some(d)) if a < d), "Allow first, then Deny");
        assert!(html.contains("btn-primary\" type=\"submit\" name=\"decision\" value=\"allow\""));
        assert!(html.contains("btn-secondary\" type=\"submit\" name=\"decision\" value=\"deny\""));
        Ok(())
    }

    #[test]
    fn logout_page_escapes_and_has_fields() -> Result<(), askama::Error> {
        let html = LogoutPage { user_display: evil("disp"), csrf: evil("csrf") }.render()?;
        check_page(&html);
        assert!(html.contains("<h1>Log out of Valet?</h1>"));
        assert!(html.contains(&escaped("disp")));
        assert!(html.contains("method=\"post\" action=\"/logout\""));
        assert!(html.contains(&format!("name=\"csrf\" value=\"{}\"", escaped("csrf"))));
        assert!(html.contains("type=\"submit\">Log Out</button>"));
        assert!(html.contains("href=\"/\">Cancel</a>"));
        Ok(())
    }

    #[test]
    fn logged_out_page() -> Result<(), askama::Error> {
        let html = LoggedOutPage { front_channel: vec![] }.render()?;
        check_page(&html);
        assert!(html.contains("<h1>You have been logged out.</h1>"));
        assert!(html.contains("href=\"/login\">Log in again</a>"));
        Ok(())
    }

    #[test]
    fn error_page_escapes() -> Result<(), askama::Error> {
        let html = ErrorPage { title: evil("title"), error: evil("code"), description: evil("desc") }.render()?;
        check_page(&html);
        assert!(html.contains(&format!("<h1>{}</h1>", escaped("title"))));
        assert!(html.contains(&format!("<title>{} | Valet</title>", escaped("title"))));
        assert!(html.contains(&format!("<code class=\"error-code\">{}</code>", escaped("code"))));
        assert!(html.contains(&escaped("desc")));
        assert!(html.contains("role=\"alert\""));
        Ok(())
    }

    #[test]
    fn home_page_states() -> Result<(), askama::Error> {
        let signed_in =
            HomePage { user_display: Some(evil("disp")), username: Some(evil("uname")), org_name: evil("org") }
                .render()?;
        check_page(&signed_in);
        assert!(signed_in.contains(&escaped("disp")));
        assert!(signed_in.contains(&escaped("uname")));
        assert!(signed_in.contains(&escaped("org")));
        assert!(signed_in.contains("href=\"/logout\""));
        assert!(!signed_in.contains("href=\"/login\""));

        let only_username =
            HomePage { user_display: None, username: Some(evil("uname")), org_name: "Acme".into() }.render()?;
        check_page(&only_username);
        assert!(only_username.contains(&escaped("uname")));
        assert!(only_username.contains("href=\"/logout\""));

        let anonymous = HomePage { user_display: None, username: None, org_name: evil("org") }.render()?;
        check_page(&anonymous);
        assert!(anonymous.contains(&escaped("org")));
        assert!(anonymous.contains("href=\"/login\""));
        assert!(!anonymous.contains("href=\"/logout\""));
        Ok(())
    }

    #[test]
    fn device_page_escapes_and_has_fields() -> Result<(), askama::Error> {
        let html = DevicePage {
            csrf: evil("csrf"),
            user_code: evil("code"),
            error: Some(evil("err")),
            notice: Some(evil("notice")),
        }
        .render()?;
        check_page(&html);
        check_labels(&html);
        assert!(html.contains("<h1>Connect Your Device</h1>"));
        assert!(html.contains("method=\"post\" action=\"/setup/connect\""));
        assert!(html.contains(&format!("name=\"user_code\" type=\"text\" value=\"{}\"", escaped("code"))));
        for attr in [
            "autocomplete=\"off\"",
            "autocapitalize=\"characters\"",
            "inputmode=\"text\"",
            "maxlength=\"9\"",
            "pattern=\"",
        ] {
            assert!(html.contains(attr), "{attr}");
        }
        assert!(html.contains(&format!("name=\"csrf\" value=\"{}\"", escaped("csrf"))));
        assert!(html.contains("role=\"alert\""));
        assert!(html.contains(&escaped("err")));
        assert!(html.contains(&escaped("notice")));
        assert!(html.contains(">Connect</button>"));
        Ok(())
    }

    #[test]
    fn device_consent_page_escapes_and_has_fields() -> Result<(), askama::Error> {
        let html =
            DeviceConsentPage { app_name: evil("app"), scopes: scopes(), csrf: evil("csrf"), user_code: evil("code") }
                .render()?;
        check_page(&html);
        assert!(html.contains("<h1>Allow Access?</h1>"));
        assert!(html.contains(&escaped("app")));
        assert!(html.contains(&escaped("scope-desc")));
        assert!(html.contains(&escaped("scope-name")));
        assert!(html.contains("method=\"post\" action=\"/setup/connect/approve\""));
        assert!(html.contains(&format!("name=\"csrf\" value=\"{}\"", escaped("csrf"))));
        assert!(html.contains(&format!("name=\"user_code\" value=\"{}\"", escaped("code"))));
        let allow = html.find("name=\"decision\" value=\"allow\">Allow</button>");
        let deny = html.find("name=\"decision\" value=\"deny\">Deny</button>");
        assert!(matches!((allow, deny), (Some(a), Some(d)) if a < d), "Allow first, then Deny");
        Ok(())
    }

    #[test]
    fn consent_without_scopes_still_renders() -> Result<(), askama::Error> {
        let html = ConsentPage {
            app_name: "App".into(),
            user_display: "Ann".into(),
            username: "ann@example.com".into(),
            scopes: Vec::new(),
            csrf: "c".into(),
            request: "r".into(),
            request_tag: "t".into(),
            unverified: false,
        }
        .render()?;
        check_page(&html);
        assert!(!html.contains("<ul class=\"scopes\""));
        assert!(!html.contains("Unverified application"));
        Ok(())
    }

    #[test]
    fn stylesheet_is_embedded() {
        assert!(VALET_CSS.contains(":focus-visible"));
        assert!(VALET_CSS.contains("@media"));
        assert!(!VALET_CSS.contains("@import"), "no external CSS");
        assert!(!VALET_CSS.contains("url("), "no external resources");
    }
}

//! Page templates (askama).

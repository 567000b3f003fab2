//! Who may do what: bearer tokens checked in constant time, read or write access.

use super::*;

/// Byte strings equal, in time that depends only on their lengths.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// The token's holder and access, or the response refusing the request.
pub(super) fn authorize(req: &HttpRequest, st: &AppState, need: Access) -> Result<String, HttpResponse> {
    authorize_cfg(req, &st.cfg, need)
}

/// The caller's token name, if its token allows `need` under `cfg`; else the refusal.
pub(crate) fn authorize_cfg(req: &HttpRequest, cfg: &ServeConfig, need: Access) -> Result<String, HttpResponse> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        if need == Access::Read && cfg.read_open {
            return Ok("anonymous".into());
        }
        return Err(crate::serve::body::closing(error(
            StatusCode::UNAUTHORIZED,
            "a bearer token is required (Authorization: Bearer …)",
            vec![],
        )));
    };
    // Every configured token is compared, each in constant time: the reply's timing tells
    // nothing about how much of a guess was right.
    let found = cfg
        .tokens
        .iter()
        .fold(None, |hit, t| if constant_time_eq(t.token.as_bytes(), token.as_bytes()) { Some(t) } else { hit });
    match found {
        None => Err(crate::serve::body::closing(error(StatusCode::UNAUTHORIZED, "unknown token", vec![]))),
        Some(t) if need == Access::Write && t.access != Access::Write => Err(crate::serve::body::closing(error(
            StatusCode::FORBIDDEN,
            format!("token \"{}\" is read-only", t.name),
            vec![],
        ))),
        Some(t) => Ok(t.name.clone()),
    }
}

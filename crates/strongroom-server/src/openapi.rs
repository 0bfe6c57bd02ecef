//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Strongroom", description = "Encrypted secrets: PocketBase-compatible secrets API with versions, audit and rotation."),
    paths(
        routes::system::health, routes::system::openapi_json, routes::secrets::create_secret,
        routes::secrets::list_secrets, routes::secrets::get_secret, routes::secrets::update_secret,
        routes::secrets::delete_secret, routes::versions::history, routes::versions::rollback,
        routes::audit::audit, routes::audit::rotation
    ),
    components(schemas(crate::ErrorBody)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// The OpenAPI 3.1 document of this API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    env!("CARGO_PKG_VERSION").clone_into(&mut doc.info.version);
    doc
}

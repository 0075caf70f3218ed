// The dashboard's page and files: GET / (index.html) and GET /dashboard/{file}, embedded in the
// binary (api/dashboard_assets.h) or read from --dashboard-dir. They hold no data (the page asks
// the API for it, with the user's key when the server has keys), so they need no API key.
// Conditional requests (If-None-Match) are answered 304; the page itself is never cached stale
// (no-cache: revalidated each load), the files it loads may be cached for a minute.
#include "api/dashboard_assets.h"
#include "api/routes.h"

namespace steno::api {
namespace {

void ServeAsset(Context& ctx, Call& call, const std::string& name, const char* cache_control) {
  auto asset = LoadDashboardAsset(ctx.options.dashboard_dir, name);
  if (!asset) {
    return SendError(call.res, MakeApiError(404, "not_found", "no dashboard file '" + name + "'"));
  }
  call.res.set_header("Cache-Control", cache_control);
  call.res.set_header("ETag", asset->etag);
  call.res.set_header("X-Content-Type-Options", "nosniff");
  if (call.req.get_header_value("If-None-Match") == asset->etag) {
    call.res.status = 304;
    return;
  }
  call.res.status = 200;
  call.res.set_content(std::move(asset->body), asset->content_type);
}

}  // namespace

void AddDashboardRoutes(ApiRouter& router, Context& ctx) {
  router.Add(
      "GET", "/",
      [&ctx](Call& c) {
        c.res.set_header("Content-Security-Policy",
                         "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                         "script-src 'self'; connect-src 'self'; frame-ancestors 'none'");
        ServeAsset(ctx, c, "index.html", "no-cache");
      },
      /*is_public=*/true);
  router.Add(
      "GET", "/dashboard/{file}",
      [&ctx](Call& c) { ServeAsset(ctx, c, c.params[0], "max-age=60"); },
      /*is_public=*/true);
}

}  // namespace steno::api

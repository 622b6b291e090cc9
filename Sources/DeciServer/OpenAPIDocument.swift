// The API described as OpenAPI 3.1, served at /openapi.json. Written by hand next to the routes it
// describes: the native job API here (JobRoutes, SystemRoutes, JobJSON, EventStream), each
// compatibility API in its own fragment (`paths` and `components.schemas` merged in). The server
// tests check that every route is in it and that the job object's keys match what the server sends.
import Foundation

enum OpenAPIDocument {
    /// Fragments of the compatibility APIs: JSON objects with `paths` and optionally
    /// `components.schemas`, merged into the native document.
    static let fragments: [String] = [openAI, A1111OpenAPI.fragment]

    /// The whole document, merged once.
    static let json: String = merge(native, fragments)

    static func merge(_ base: String, _ parts: [String]) -> String {
        guard var doc = (try? JSONSerialization.jsonObject(with: Data(base.utf8))) as? [String: Any] else { return base }
        var paths = doc["paths"] as? [String: Any] ?? [:]
        var components = doc["components"] as? [String: Any] ?? [:]
        var schemas = components["schemas"] as? [String: Any] ?? [:]
        for part in parts {
            guard let fragment = (try? JSONSerialization.jsonObject(with: Data(part.utf8))) as? [String: Any] else { continue }
            paths.merge(fragment["paths"] as? [String: Any] ?? [:]) { old, _ in old }
            let more = (fragment["components"] as? [String: Any])?["schemas"] as? [String: Any] ?? [:]
            schemas.merge(more) { old, _ in old }
        }
        components["schemas"] = schemas
        doc["paths"] = paths
        doc["components"] = components
        guard let data = try? JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys, .withoutEscapingSlashes]) else { return base }
        return String(decoding: data, as: UTF8.self)
    }

    static let native = #"""
    {
      "openapi": "3.1.0",
      "info": {
        "title": "DeciDiffusion job API",
        "version": "1.0.0",
        "description": "Text-to-image, image-to-image and inpainting jobs on a loaded DeciDiffusion / SD-1.x model: submit, watch progress and previews over Server-Sent Events, cancel, fetch PNGs with their A1111 parameters. With --api-key every route but / and /healthz needs Authorization: Bearer <key>."
      },
      "servers": [{"url": "/"}],
      "security": [{"bearer": []}],
      "paths": {
        "/v1/jobs": {
          "post": {
            "operationId": "createJob",
            "summary": "Queue a generation job",
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobRequest"}}}},
            "responses": {
              "202": {
                "description": "Queued",
                "headers": {"Location": {"schema": {"type": "string"}, "description": "The job's URL"}},
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobCreated"}}}
              },
              "400": {"$ref": "#/components/responses/BadRequest"},
              "401": {"$ref": "#/components/responses/Unauthorized"},
              "413": {"$ref": "#/components/responses/TooLarge"},
              "422": {"$ref": "#/components/responses/Invalid"},
              "429": {"$ref": "#/components/responses/QueueFull"},
              "503": {"$ref": "#/components/responses/Unavailable"}
            }
          }
        },
        "/v1/jobs/{id}": {
          "parameters": [{"$ref": "#/components/parameters/JobID"}],
          "get": {
            "operationId": "getJob",
            "summary": "A job's state, progress and image URLs",
            "responses": {
              "200": {"description": "The job", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}},
              "401": {"$ref": "#/components/responses/Unauthorized"},
              "404": {"$ref": "#/components/responses/NotFound"},
              "410": {"$ref": "#/components/responses/Gone"}
            }
          },
          "delete": {
            "operationId": "deleteJob",
            "summary": "Cancel a job (same as POST /v1/jobs/{id}/cancel)",
            "responses": {
              "200": {"description": "The job after cancelling", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}},
              "401": {"$ref": "#/components/responses/Unauthorized"},
              "404": {"$ref": "#/components/responses/NotFound"},
              "410": {"$ref": "#/components/responses/Gone"}
            }
          }
        },
        "/v1/jobs/{id}/cancel": {
          "parameters": [{"$ref": "#/components/parameters/JobID"}],
          "post": {
            "operationId": "cancelJob",
            "summary": "Cancel a job: a queued one leaves the queue at once, a running one stops after its current step (keeping its partial image unless keep_partial was false); a finished one is left as it is",
            "responses": {
              "200": {"description": "The job after cancelling", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}},
              "401": {"$ref": "#/components/responses/Unauthorized"},
              "404": {"$ref": "#/components/responses/NotFound"},
              "410": {"$ref": "#/components/responses/Gone"}
            }
          }
        },
        "/v1/jobs/{id}/events": {
          "parameters": [{"$ref": "#/components/parameters/JobID"}],
          "get": {
            "operationId": "jobEvents",
            "summary": "Server-Sent Events: the current state, then every change up to the final event",
            "description": "Events: `queued` {position}; `started` (Job); `progress` (Progress); then one of `done`, `failed`, `cancelled` (Job), after which the stream ends. A client that disconnects does not affect the job.",
            "responses": {
              "200": {"description": "An event stream (see the description for the events)", "content": {"text/event-stream": {}}},
              "401": {"$ref": "#/components/responses/Unauthorized"},
              "404": {"$ref": "#/components/responses/NotFound"},
              "410": {"$ref": "#/components/responses/Gone"}
            }
          }
        },
        "/v1/jobs/{id}/images/{index}.png": {
          "parameters": [
            {"$ref": "#/components/parameters/JobID"},
            {"name": "index", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0}}
          ],
          "get": {
            "operationId": "jobImage",
            "summary": "One result image as PNG, with an A1111 `parameters` text chunk",
            "responses": {
              "200": {"description": "The image", "content": {"image/png": {"schema": {"type": "string", "contentMediaType": "image/png"}}}},
              "401": {"$ref": "#/components/responses/Unauthorized"},
              "404": {"$ref": "#/components/responses/NotFound"},
              "410": {"$ref": "#/components/responses/Gone"}
            }
          }
        },
        "/v1/capabilities": {
          "get": {
            "operationId": "capabilities",
            "summary": "Models, defaults, schedulers and limits of this server",
            "responses": {
              "200": {"description": "Capabilities", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Capabilities"}}}},
              "401": {"$ref": "#/components/responses/Unauthorized"}
            }
          }
        },
        "/healthz": {
          "get": {
            "operationId": "health",
            "summary": "Liveness and readiness (200 once the default model is loaded, 503 before); never needs a key",
            "security": [],
            "responses": {
              "200": {"description": "Ready", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}},
              "503": {"description": "Loading", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}
            }
          }
        },
        "/metrics": {
          "get": {
            "operationId": "metrics",
            "summary": "Prometheus text exposition: queue depth and capacity, jobs by outcome, step seconds, images generated, requests",
            "responses": {
              "200": {"description": "Metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
              "401": {"$ref": "#/components/responses/Unauthorized"}
            }
          }
        },
        "/openapi.json": {
          "get": {
            "operationId": "openapi",
            "summary": "This document",
            "responses": {
              "200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}},
              "401": {"$ref": "#/components/responses/Unauthorized"}
            }
          }
        },
        "/": {
          "get": {
            "operationId": "page",
            "summary": "The web page (HTML, built into the binary)",
            "security": [],
            "responses": {"200": {"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}}}
          }
        }
      },
      "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "The server's --api-key (or DECI_API_KEY)"}},
        "parameters": {
          "JobID": {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}, "description": "The id POST /v1/jobs returned"}
        },
        "responses": {
          "BadRequest": {"description": "The body is not JSON, a field has the wrong type, or names an unknown model", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "Invalid": {"description": "A field's value breaks a rule (the message names the field and the rule)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "Unauthorized": {"description": "Missing or wrong API key", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "NotFound": {"description": "No such job or image", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "Gone": {"description": "The job's results expired", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "TooLarge": {"description": "The body is over --max-body-mb", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "QueueFull": {
            "description": "The queue is full; retry after the given seconds",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
          },
          "Unavailable": {"description": "The server is shutting down", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        },
        "schemas": {
          "JobRequest": {
            "type": "object",
            "required": ["prompt"],
            "properties": {
              "prompt": {"type": "string"},
              "negative_prompt": {"type": ["string", "null"]},
              "width": {"type": ["integer", "null"], "description": "Pixels; a multiple of /v1/capabilities' size_multiple; default: the model's"},
              "height": {"type": ["integer", "null"]},
              "steps": {"type": ["integer", "null"], "minimum": 1, "maximum": 1000},
              "guidance_scale": {"type": ["number", "null"]},
              "guidance_rescale": {"type": ["number", "null"]},
              "scheduler": {"type": ["string", "null"], "description": "One of /v1/capabilities' schedulers; default: the checkpoint's"},
              "seed": {"type": ["integer", "null"], "description": "0...2^64-1; absent, null or negative: random. A batch draws its noise from this one seed, as diffusers does (the PNGs say Batch pos)"},
              "num_images": {"type": ["integer", "null"], "minimum": 1},
              "init_image": {"type": ["string", "null"], "description": "img2img / inpainting source: base64 PNG or JPEG, raw or as a data: URL"},
              "mask": {"type": ["string", "null"], "description": "Inpainting mask (white = repaint), base64 PNG or JPEG"},
              "strength": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
              "eta": {"type": ["number", "null"]},
              "clip_skip": {"type": ["integer", "null"], "minimum": 0},
              "model": {"type": ["string", "null"], "description": "One of /v1/capabilities' models; default: default_model"},
              "vae_tiling": {"type": ["boolean", "null"]},
              "preview_every": {"type": ["integer", "null"], "minimum": 0, "description": "A cheap latent preview every N steps in progress events (0: none)"},
              "preview_decode_every": {"type": ["integer", "null"], "minimum": 0, "description": "A full VAE decode of the x0 estimate every N steps (0: none)"},
              "preview_upscale": {"type": ["boolean", "null"], "description": "Upscale cheap previews to the output size"},
              "keep_partial": {"type": ["boolean", "null"], "description": "A cancelled running job keeps its current image (default true)"},
              "prompt_weighting": {"type": ["string", "null"], "enum": ["none", "a1111", null], "description": "none (default): diffusers' encoding, cut at 77 tokens; a1111: A1111's attention syntax, BREAK and 75-token chunks"},
              "pad_cond_uncond": {"type": ["boolean", "null"], "description": "a1111 weighting: pad prompt/negative prompt of different chunk counts and batch them instead of two denoiser calls"},
              "loras": {"type": ["array", "null"], "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "multiplier": {"type": "number"}, "unet_multiplier": {"type": "number"}}}, "description": "LoRAs from the server's --lora-dir by file name (also <lora:NAME:SCALE> tags in the prompt), merged in place"}
            }
          },
          "JobCreated": {
            "type": "object",
            "required": ["id", "status", "queue_position", "created", "poll_url", "events_url"],
            "properties": {
              "id": {"type": "string"},
              "status": {"$ref": "#/components/schemas/Status"},
              "queue_position": {"type": ["integer", "null"], "description": "1: next to run"},
              "created": {"type": ["string", "null"], "format": "date-time"},
              "poll_url": {"type": "string"},
              "events_url": {"type": "string"}
            }
          },
          "Status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
          "Job": {
            "type": "object",
            "required": ["id", "status", "model", "queue_position", "step", "total_steps", "seconds_per_step", "eta_seconds", "seed", "error",
                         "images", "partial", "warnings", "created", "started", "finished", "timings", "width", "height", "steps"],
            "properties": {
              "id": {"type": "string"},
              "status": {"$ref": "#/components/schemas/Status"},
              "model": {"type": "string"},
              "queue_position": {"type": ["integer", "null"]},
              "step": {"type": ["integer", "null"]},
              "total_steps": {"type": ["integer", "null"]},
              "seconds_per_step": {"type": ["number", "null"]},
              "eta_seconds": {"type": ["number", "null"]},
              "seed": {"type": "integer", "description": "The seed the whole batch was drawn from"},
              "error": {"type": ["string", "null"]},
              "images": {"type": "array", "items": {"type": "string"}, "description": "PNG URLs"},
              "partial": {"type": "boolean", "description": "The images are the state at cancellation, not finished images"},
              "warnings": {"type": "array", "items": {"type": "string"}},
              "created": {"type": ["string", "null"], "format": "date-time"},
              "started": {"type": ["string", "null"], "format": "date-time"},
              "finished": {"type": ["string", "null"], "format": "date-time"},
              "timings": {
                "type": ["object", "null"],
                "properties": {
                  "text_encoder": {"type": "number"}, "denoising": {"type": "number"}, "vae_encode": {"type": "number"},
                  "vae_decode": {"type": "number"}, "steps": {"type": "integer"}
                }
              },
              "width": {"type": ["integer", "null"]},
              "height": {"type": ["integer", "null"]},
              "steps": {"type": ["integer", "null"]}
            }
          },
          "Progress": {
            "type": "object",
            "required": ["step", "total_steps", "eta_seconds", "seconds_per_step"],
            "properties": {
              "step": {"type": "integer"},
              "total_steps": {"type": "integer"},
              "eta_seconds": {"type": ["number", "null"]},
              "seconds_per_step": {"type": ["number", "null"]},
              "preview": {"type": "string", "description": "Base64 PNG (present on preview steps)"},
              "preview_kind": {"type": "string", "enum": ["approximate", "decoded"]}
            }
          },
          "Capabilities": {
            "type": "object",
            "properties": {
              "models": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "loaded": {"type": "boolean"}, "default": {"type": "boolean"}}}},
              "default_model": {"type": "string"},
              "defaults": {
                "type": ["object", "null"],
                "properties": {
                  "steps": {"type": "integer"}, "guidance_scale": {"type": "number"}, "guidance_rescale": {"type": "number"},
                  "width": {"type": "integer"}, "height": {"type": "integer"}, "size_multiple": {"type": "integer"}, "scheduler": {"type": ["string", "null"]}
                }
              },
              "schedulers": {"type": "array", "items": {"type": "string"}},
              "limits": {
                "type": "object",
                "properties": {
                  "max_pixels": {"type": "integer"}, "max_batch": {"type": "integer"}, "max_steps": {"type": "integer"},
                  "queue_size": {"type": "integer"}, "max_body_bytes": {"type": "integer"}
                }
              },
              "features": {"type": "object"}
            }
          },
          "Health": {
            "type": "object",
            "required": ["status", "model_loaded", "models", "queue_depth", "queue_capacity", "running"],
            "properties": {
              "status": {"type": "string", "enum": ["ok", "loading"]},
              "model_loaded": {"type": "boolean"},
              "models": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "loaded": {"type": "boolean"}}}},
              "queue_depth": {"type": "integer"},
              "queue_capacity": {"type": "integer"},
              "running": {"type": ["string", "null"], "description": "The running job's id"}
            }
          },
          "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
              "error": {
                "type": "object",
                "required": ["message", "code"],
                "properties": {
                  "message": {"type": "string"},
                  "field": {"type": "string", "description": "The request field the error is about"},
                  "code": {"type": "string"}
                }
              }
            }
          }
        }
      }
    }
    """#
}

// The OpenAI Images routes in the served OpenAPI document (a fragment merged by OpenAPIDocument).
extension OpenAPIDocument {
    /// The errors both image routes answer with besides their 400 (interpolated into `openAI`).
    static let imageErrors = #"""
              "401": {"description": "Missing or wrong API key", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}}},
              "404": {"description": "Unknown model (code model_not_found)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}}},
              "413": {"description": "Body over --max-body-mb", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}}},
              "429": {"description": "The queue is full; Retry-After says when to try again", "headers": {"Retry-After": {"schema": {"type": "integer"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}}},
              "500": {"description": "The generation failed (x-should-retry: false: it would fail again)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}}},
              "503": {"description": "Shutting down, or the job was cancelled", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}}}
    """#

    static let openAI = #"""
    {
      "paths": {
        "/v1/images/generations": {
          "post": {
            "operationId": "openaiCreateImage",
            "tags": ["OpenAI"],
            "summary": "OpenAI Images: generate (synchronous or streamed)",
            "description": "OpenAI's images.generate on the loaded model. One request is one job in the shared queue; a client that disconnects cancels it. Honoured: prompt, n, size, response_format, output_format (png, jpeg), output_compression (JPEG quality), model, stream, partial_images. Accepted and ignored: quality, style, user, background, moderation and any other field. Extension fields (the openai client's extra_body): seed, negative_prompt, steps, guidance_scale, scheduler. Errors are OpenAI's {error: {message, type, param, code}} with x-should-retry: false when a retry cannot help.",
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIImageGenerationRequest"}}}},
            "responses": {
              "200": {
                "description": "The images, or with stream: true a text/event-stream of partial_image events then one completed event per image",
                "content": {
                  "application/json": {"schema": {"$ref": "#/components/schemas/OpenAIImagesResponse"}},
                  "text/event-stream": {"x-event-data": {"$ref": "#/components/schemas/OpenAIImageStreamEvent"}}
                }
              },
              "400": {"description": "A field is missing, of the wrong type or out of range (param names it)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}}},
              \#(imageErrors)
            }
          }
        },
        "/v1/images/edits": {
          "post": {
            "operationId": "openaiEditImage",
            "tags": ["OpenAI"],
            "summary": "OpenAI Images: edit (inpainting with a mask, image-to-image without)",
            "description": "OpenAI's images.edit. The first of image / image[] is edited. With a mask (a PNG with alpha, the image's size), its fully transparent pixels (alpha 0) are repainted: inpainting, strength 1.0 by default. Without a mask, an image with fully transparent pixels is inpainted there; an opaque one runs image-to-image with strength 0.75 by default. Same fields, extensions and errors as generations, plus the extension strength.",
            "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {"$ref": "#/components/schemas/OpenAIImageEditRequest"}}}},
            "responses": {
              "200": {
                "description": "The images, or with stream: true a text/event-stream of image_edit events",
                "content": {
                  "application/json": {"schema": {"$ref": "#/components/schemas/OpenAIImagesResponse"}},
                  "text/event-stream": {"x-event-data": {"$ref": "#/components/schemas/OpenAIImageStreamEvent"}}
                }
              },
              "400": {"description": "A field or file is missing or invalid (a mask without alpha, of another size, a body that is not multipart)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}}},
              \#(imageErrors)
            }
          }
        },
        "/v1/models": {
          "get": {
            "operationId": "openaiListModels",
            "tags": ["OpenAI"],
            "summary": "OpenAI: the models this server can run (ids for the model field)",
            "responses": {
              "200": {"description": "Every model of the catalog", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIModelList"}}}},
              "401": {"description": "Missing or wrong API key", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}}}
            }
          }
        },
        "/v1/models/{model}": {
          "get": {
            "operationId": "openaiRetrieveModel",
            "tags": ["OpenAI"],
            "summary": "OpenAI: one model",
            "parameters": [{"name": "model", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {
              "200": {"description": "The model", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIModel"}}}},
              "401": {"description": "Missing or wrong API key", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}}},
              "404": {"description": "No such model (code model_not_found)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}}}
            }
          }
        }
      },
      "components": {
        "schemas": {
          "OpenAIImageGenerationRequest": {
            "type": "object",
            "required": ["prompt"],
            "properties": {
              "prompt": {"type": "string", "minLength": 1},
              "n": {"type": "integer", "minimum": 1, "default": 1, "description": "Images, at most the server's --max-batch"},
              "size": {"type": "string", "default": "auto", "description": "WIDTHxHEIGHT, both positive multiples of the model's size multiple (size_multiple in GET /v1/capabilities) up to 4096 and within --max-pixels; auto or absent: the model's default"},
              "response_format": {"type": "string", "enum": ["b64_json", "url"], "default": "b64_json", "description": "url: an absolute URL of the PNG on this server (the native job image route; same API key; kept for --result-lifetime)"},
              "output_format": {"type": "string", "enum": ["png", "jpeg"], "default": "png", "description": "webp and others are refused (no encoder); jpeg only with b64_json"},
              "output_compression": {"type": "integer", "minimum": 0, "maximum": 100, "default": 100, "description": "JPEG quality (0 is quality 1)"},
              "model": {"type": "string", "description": "An id from GET /v1/models; absent: the server's default model"},
              "stream": {"type": "boolean", "default": false},
              "partial_images": {"type": "integer", "minimum": 0, "maximum": 3, "default": 0, "description": "Streamed previews (cheap latent previews at the output size) spread over the steps"},
              "quality": {"type": "string", "description": "Accepted and ignored"},
              "style": {"type": "string", "description": "Accepted and ignored"},
              "user": {"type": "string", "description": "Accepted and ignored"},
              "background": {"type": "string", "description": "Accepted and ignored (images are always opaque)"},
              "moderation": {"type": "string", "description": "Accepted and ignored"},
              "seed": {"type": "integer", "description": "Extension: the seed (-1 or absent: random); the same seed gives the pixels of decidiffusion generate --seed"},
              "negative_prompt": {"type": "string", "description": "Extension"},
              "steps": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "Extension: denoising steps (default: the model's)"},
              "guidance_scale": {"type": "number", "minimum": 0, "maximum": 100, "description": "Extension: classifier-free guidance scale"},
              "scheduler": {"type": "string", "description": "Extension: a scheduler name from GET /v1/capabilities"}
            }
          },
          "OpenAIImageEditRequest": {
            "type": "object",
            "required": ["prompt"],
            "properties": {
              "image": {"type": "string", "format": "binary", "description": "PNG or JPEG to edit (or image[] parts: the first is used)"},
              "image[]": {"type": "array", "items": {"type": "string", "format": "binary"}},
              "mask": {"type": "string", "format": "binary", "description": "PNG with an alpha channel, the image's size; alpha 0 marks the area to edit"},
              "prompt": {"type": "string", "minLength": 1},
              "n": {"type": "integer", "minimum": 1, "default": 1},
              "size": {"type": "string", "description": "WIDTHxHEIGHT as for generations; absent or auto: the image's size rounded down to the model's multiple"},
              "response_format": {"type": "string", "enum": ["b64_json", "url"], "default": "b64_json"},
              "output_format": {"type": "string", "enum": ["png", "jpeg"], "default": "png"},
              "output_compression": {"type": "integer", "minimum": 0, "maximum": 100, "default": 100},
              "model": {"type": "string"},
              "stream": {"type": "boolean", "default": false},
              "partial_images": {"type": "integer", "minimum": 0, "maximum": 3, "default": 0},
              "strength": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "description": "Extension: how much of the schedule runs; default 0.75 for image-to-image (no mask), 1.0 for inpainting"},
              "seed": {"type": "integer"},
              "negative_prompt": {"type": "string"},
              "steps": {"type": "integer", "minimum": 1, "maximum": 1000},
              "guidance_scale": {"type": "number", "minimum": 0, "maximum": 100},
              "scheduler": {"type": "string"}
            }
          },
          "OpenAIImagesResponse": {
            "type": "object",
            "required": ["created", "data", "output_format", "size"],
            "properties": {
              "created": {"type": "integer", "description": "Unix seconds"},
              "data": {"type": "array", "items": {"type": "object", "properties": {"b64_json": {"type": "string", "description": "The image (PNG with its A1111 parameters chunk, or JPEG)"}, "url": {"type": "string"}}}},
              "output_format": {"type": "string", "enum": ["png", "jpeg"]},
              "size": {"type": "string", "description": "WIDTHxHEIGHT of the images"},
              "background": {"type": "string", "enum": ["opaque"]}
            }
          },
          "OpenAIImageStreamEvent": {
            "type": "object",
            "description": "One SSE data payload: image_generation.partial_image (or image_edit.partial_image) with partial_image_index 0..partial_images-1, then one image_generation.completed (image_edit.completed) per image; a failure after the stream began is an error event {type: error, error: {...}}",
            "required": ["type"],
            "properties": {
              "type": {"type": "string", "enum": ["image_generation.partial_image", "image_generation.completed", "image_edit.partial_image", "image_edit.completed", "error"]},
              "b64_json": {"type": "string"},
              "partial_image_index": {"type": "integer"},
              "created_at": {"type": "integer"},
              "output_format": {"type": "string"},
              "size": {"type": "string"},
              "background": {"type": "string"},
              "quality": {"type": "string"},
              "usage": {"type": "object", "description": "Zeros: the engine counts no tokens"},
              "error": {"$ref": "#/components/schemas/OpenAIErrorObject"}
            }
          },
          "OpenAIErrorObject": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
              "message": {"type": "string"},
              "type": {"type": "string", "enum": ["invalid_request_error", "authentication_error", "rate_limit_error", "server_error"]},
              "param": {"type": ["string", "null"], "description": "The field the error is about"},
              "code": {"type": ["string", "null"]}
            }
          },
          "OpenAIError": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"$ref": "#/components/schemas/OpenAIErrorObject"}}
          },
          "OpenAIModel": {
            "type": "object",
            "required": ["id", "object", "created", "owned_by"],
            "properties": {
              "id": {"type": "string"},
              "object": {"type": "string", "enum": ["model"]},
              "created": {"type": "integer"},
              "owned_by": {"type": "string"}
            }
          },
          "OpenAIModelList": {
            "type": "object",
            "required": ["object", "data"],
            "properties": {
              "object": {"type": "string", "enum": ["list"]},
              "data": {"type": "array", "items": {"$ref": "#/components/schemas/OpenAIModel"}}
            }
          }
        }
      }
    }
    """#
}

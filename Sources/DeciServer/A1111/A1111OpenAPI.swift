// /sdapi/v1 in the OpenAPI document (merged into the native one by OpenAPIDocument).
enum A1111OpenAPI {
    static let fragment = #"""
    {
      "paths": {
        "/sdapi/v1/txt2img": {"post": {
          "operationId": "a1111Txt2Img", "tags": ["A1111"],
          "summary": "A1111 text to image, answered when done; image i uses seed + i",
          "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/A1111Txt2Img"}}}},
          "responses": {
            "200": {"description": "Images", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/A1111Result"}}}},
            "401": {"$ref": "#/components/responses/Unauthorized"},
            "413": {"$ref": "#/components/responses/TooLarge"},
            "422": {"description": "A field this engine cannot honour, or a value that breaks a rule", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/A1111Error"}}}},
            "429": {"description": "Queue full", "headers": {"Retry-After": {"schema": {"type": "integer"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/A1111Error"}}}},
            "500": {"description": "The generation failed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/A1111Error"}}}}
          }}},
        "/sdapi/v1/img2img": {"post": {
          "operationId": "a1111Img2Img", "tags": ["A1111"],
          "summary": "A1111 image to image and inpainting (mask: white or opaque = repaint)",
          "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/A1111Img2Img"}}}},
          "responses": {
            "200": {"description": "Images", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/A1111Result"}}}},
            "401": {"$ref": "#/components/responses/Unauthorized"},
            "413": {"$ref": "#/components/responses/TooLarge"},
            "422": {"description": "A field this engine cannot honour, or a value that breaks a rule", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/A1111Error"}}}},
            "429": {"description": "Queue full", "headers": {"Retry-After": {"schema": {"type": "integer"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/A1111Error"}}}},
            "500": {"description": "The generation failed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/A1111Error"}}}}
          }}},
        "/sdapi/v1/progress": {"get": {
          "operationId": "a1111Progress", "tags": ["A1111"], "summary": "Progress of the current call (0 and job_count 0 when idle)",
          "parameters": [{"name": "skip_current_image", "in": "query", "schema": {"type": "boolean"}}],
          "responses": {"200": {"description": "Progress", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/A1111Progress"}}}},
                        "401": {"$ref": "#/components/responses/Unauthorized"}}}},
        "/sdapi/v1/interrupt": {"post": {"operationId": "a1111Interrupt", "tags": ["A1111"],
          "summary": "Stop the current call; it answers with its partial image",
          "responses": {"200": {"description": "{}", "content": {"application/json": {"schema": {"type": "object"}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}}}},
        "/sdapi/v1/skip": {"post": {"operationId": "a1111Skip", "tags": ["A1111"],
          "summary": "Stop the current image early; the call goes on with its next image",
          "responses": {"200": {"description": "null", "content": {"application/json": {"schema": {"type": "null"}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}}}},
        "/sdapi/v1/options": {
          "get": {"operationId": "a1111GetOptions", "tags": ["A1111"], "summary": "Options (sd_model_checkpoint, CLIP_stop_at_last_layers, ...)",
                  "responses": {"200": {"description": "Options", "content": {"application/json": {"schema": {"type": "object"}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}}},
          "post": {"operationId": "a1111SetOptions", "tags": ["A1111"],
                   "summary": "Set options; the whole dict GET returned is accepted back; sd_model_checkpoint switches the model",
                   "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                   "responses": {"200": {"description": "null", "content": {"application/json": {"schema": {"type": "null"}}}},
                                 "401": {"$ref": "#/components/responses/Unauthorized"},
                                 "422": {"description": "Unknown checkpoint or unsupported value", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/A1111Error"}}}}}}},
        "/sdapi/v1/sd-models": {"get": {"operationId": "a1111Models", "tags": ["A1111"], "summary": "Checkpoints: title, model_name, hash, filename",
          "responses": {"200": {"description": "Models", "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}}}},
        "/sdapi/v1/refresh-checkpoints": {"post": {"operationId": "a1111RefreshCheckpoints", "tags": ["A1111"], "summary": "No-op (models are found at start)",
          "responses": {"200": {"description": "null", "content": {"application/json": {"schema": {"type": "null"}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}}}},
        "/sdapi/v1/samplers": {"get": {"operationId": "a1111Samplers", "tags": ["A1111"], "summary": "Samplers this engine runs",
          "responses": {"200": {"description": "Samplers", "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}}}},
        "/sdapi/v1/schedulers": {"get": {"operationId": "a1111Schedulers", "tags": ["A1111"], "summary": "Schedules: Automatic, Uniform, Karras",
          "responses": {"200": {"description": "Schedules", "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}}}},
        "/sdapi/v1/upscalers": {"get": {"operationId": "a1111Upscalers", "tags": ["A1111"], "summary": "None only (no hires fix)",
          "responses": {"200": {"description": "Upscalers", "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}}}},
        "/sdapi/v1/latent-upscale-modes": {"get": {"operationId": "a1111LatentUpscaleModes", "tags": ["A1111"], "summary": "Empty (no hires fix)",
          "responses": {"200": {"description": "Modes", "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}}}},
        "/sdapi/v1/sd-vae": {"get": {"operationId": "a1111VAEs", "tags": ["A1111"], "summary": "Empty (the checkpoint's own VAE)",
          "responses": {"200": {"description": "VAEs", "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}}}},
        "/sdapi/v1/loras": {"get": {"operationId": "a1111Loras", "tags": ["A1111"], "summary": "LoRAs (none yet)",
          "responses": {"200": {"description": "LoRAs", "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}}}},
        "/sdapi/v1/embeddings": {"get": {"operationId": "a1111Embeddings", "tags": ["A1111"], "summary": "Textual-inversion embeddings (none yet)",
          "responses": {"200": {"description": "Embeddings", "content": {"application/json": {"schema": {"type": "object"}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}}}},
        "/sdapi/v1/scripts": {"get": {"operationId": "a1111Scripts", "tags": ["A1111"], "summary": "No scripts",
          "responses": {"200": {"description": "Scripts", "content": {"application/json": {"schema": {"type": "object"}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}}}},
        "/sdapi/v1/cmd-flags": {"get": {"operationId": "a1111CmdFlags", "tags": ["A1111"], "summary": "A1111-style command-line flags",
          "responses": {"200": {"description": "Flags", "content": {"application/json": {"schema": {"type": "object"}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}}}},
        "/sdapi/v1/png-info": {"post": {"operationId": "a1111PNGInfo", "tags": ["A1111"], "summary": "The infotext of a posted PNG",
          "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {"image": {"type": "string"}}}}}},
          "responses": {"200": {"description": "Info", "content": {"application/json": {"schema": {"type": "object"}}}},
                        "401": {"$ref": "#/components/responses/Unauthorized"},
                        "422": {"description": "Not an image", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/A1111Error"}}}}}}}
      },
      "components": {"schemas": {
        "A1111Txt2Img": {"type": "object", "description": "A1111's fields; unknown keys are ignored", "properties": {
          "prompt": {"type": "string"}, "negative_prompt": {"type": "string"},
          "seed": {"type": ["integer", "string", "null"], "description": "-1 / null / \"\": random; image i gets seed + i"},
          "sampler_name": {"type": ["string", "null"], "description": "An A1111 name (see /sdapi/v1/samplers), optionally with a schedule (\"DPM++ 2M Karras\"); absent: the checkpoint's own scheduler"},
          "sampler_index": {"type": ["string", "null"]}, "scheduler": {"type": ["string", "null"]},
          "batch_size": {"type": "integer", "minimum": 1}, "n_iter": {"type": "integer", "minimum": 1},
          "steps": {"type": "integer", "default": 50}, "cfg_scale": {"type": "number", "default": 7},
          "width": {"type": "integer", "default": 512}, "height": {"type": "integer", "default": 512},
          "clip_skip": {"type": "integer", "minimum": 1, "maximum": 12}, "eta": {"type": ["number", "null"], "description": "DDIM eta"},
          "override_settings": {"type": "object", "description": "sd_model_checkpoint, CLIP_stop_at_last_layers, samples_format (png), sd_vae (Automatic)"},
          "send_images": {"type": "boolean"}, "save_images": {"type": "boolean", "description": "Ignored: the server writes no files"},
          "enable_hr": {"type": "boolean", "description": "true is refused (422)"}, "restore_faces": {"type": "boolean", "description": "true is refused"},
          "tiling": {"type": "boolean", "description": "true is refused"}, "script_name": {"type": ["string", "null"], "description": "refused when set"},
          "alwayson_scripts": {"type": "object", "description": "refused unless empty"}}},
        "A1111Img2Img": {"allOf": [{"$ref": "#/components/schemas/A1111Txt2Img"}, {"type": "object", "required": ["init_images"], "properties": {
          "init_images": {"type": "array", "items": {"type": "string"}, "description": "Base64 or data: URLs (the first is used); URLs are not fetched"},
          "denoising_strength": {"type": "number", "default": 0.75}, "resize_mode": {"type": "integer", "enum": [0, 1]},
          "mask": {"type": ["string", "null"]}, "mask_blur": {"type": "number", "default": 4}, "mask_blur_x": {"type": "number"}, "mask_blur_y": {"type": "number"},
          "mask_round": {"type": "boolean", "default": true}, "inpainting_fill": {"type": "integer", "enum": [0, 1]},
          "inpaint_full_res": {"type": "boolean", "default": true}, "inpaint_full_res_padding": {"type": "integer", "minimum": 0},
          "inpainting_mask_invert": {"type": ["integer", "boolean"]}, "include_init_images": {"type": "boolean"}}}]},
        "A1111Result": {"type": "object", "required": ["images", "parameters", "info"], "properties": {
          "images": {"type": "array", "items": {"type": "string"}, "description": "Raw base64 PNGs with their infotext"},
          "parameters": {"type": "object"},
          "info": {"type": "string", "description": "JSON: seed, all_seeds, infotexts, width, height, sampler_name, ..."}}},
        "A1111Progress": {"type": "object", "properties": {
          "progress": {"type": "number"}, "eta_relative": {"type": "number"}, "state": {"type": "object"},
          "current_image": {"type": ["string", "null"]}, "textinfo": {"type": ["string", "null"]}}},
        "A1111Error": {"type": "object", "required": ["error", "detail"], "properties": {
          "error": {"type": "string"}, "detail": {"type": "string"}, "body": {"type": "string"}, "errors": {"type": "string"}, "field": {"type": "string"}}}
      }}
    }
    """#
}

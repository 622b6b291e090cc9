// Discovery and operations: the page, /healthz, /metrics, /v1/capabilities, /openapi.json.
import DeciDiffusion
import DeciSchedulers
import Foundation
import Hummingbird

struct SystemRoutes {
    let service: any JobQueue
    let metrics: ServerMetrics
    let settings: ServerSettings

    func addRoutes(to router: Router<DeciRequestContext>) {
        router.get("/", use: page)
        router.get("/healthz", use: healthz)
        router.get("/metrics", use: metricsText)
        router.get("/v1/capabilities", use: capabilities)
        router.get("/openapi.json", use: openAPI)
    }

    @Sendable func page(_ request: Request, context: DeciRequestContext) async throws -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-cache"],
                 body: .init(byteBuffer: ByteBuffer(string: WebPage.html)))
    }

    struct Health: Encodable {
        struct Model: Encodable { var name: String; var loaded: Bool }
        var status: String
        var modelLoaded: Bool
        var models: [Model]
        var queueDepth: Int
        var queueCapacity: Int
        var running: String?
        enum CodingKeys: String, CodingKey {
            case status, models, running
            case modelLoaded = "model_loaded", queueDepth = "queue_depth", queueCapacity = "queue_capacity"
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(status, forKey: .status)
            try c.encode(modelLoaded, forKey: .modelLoaded)
            try c.encode(models, forKey: .models)
            try c.encode(queueDepth, forKey: .queueDepth)
            try c.encode(queueCapacity, forKey: .queueCapacity)
            try c.encode(running, forKey: .running)
        }
    }

    /// 200 once the default model is loaded, 503 (status "loading") before.
    @Sendable func healthz(_ request: Request, context: DeciRequestContext) async throws -> Response {
        let h = service.health
        let loaded = h.models.first { $0.name == h.defaultModel }?.loaded ?? false
        let body = Health(status: loaded ? "ok" : "loading", modelLoaded: loaded, models: h.models.map { .init(name: $0.name, loaded: $0.loaded) },
                          queueDepth: h.queueDepth, queueCapacity: h.queueCapacity, running: h.running?.rawValue)
        return try json(body, status: loaded ? .ok : .serviceUnavailable, headers: [.cacheControl: "no-store"])
    }

    @Sendable func metricsText(_ request: Request, context: DeciRequestContext) async throws -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(bytes: metrics.render(service.health))))
    }

    struct Capabilities: Encodable {
        struct Model: Encodable {
            var name: String
            var loaded: Bool
            var `default`: Bool
        }
        struct Defaults: Encodable {
            var steps: Int
            var guidanceScale: Double
            var guidanceRescale: Double
            var width: Int
            var height: Int
            var sizeMultiple: Int
            var scheduler: String?
            enum CodingKeys: String, CodingKey {
                case steps, width, height, scheduler
                case guidanceScale = "guidance_scale", guidanceRescale = "guidance_rescale", sizeMultiple = "size_multiple"
            }
        }
        struct Limits: Encodable {
            var maxPixels: Int
            var maxBatch: Int
            var maxSteps: Int
            var queueSize: Int
            var maxBodyBytes: Int
            enum CodingKeys: String, CodingKey {
                case maxPixels = "max_pixels", maxBatch = "max_batch", maxSteps = "max_steps", queueSize = "queue_size",
                     maxBodyBytes = "max_body_bytes"
            }
        }
        struct Features: Encodable {
            var cancelQueued = true
            var cancelRunning = true
            var previews = ["approximate", "decoded"]
            var modes: [String]
            enum CodingKeys: String, CodingKey {
                case previews, modes
                case cancelQueued = "cancel_queued", cancelRunning = "cancel_running"
            }
        }
        var models: [Model]
        var defaultModel: String
        var defaults: Defaults?
        var schedulers: [String]
        var limits: Limits
        var features: Features
        enum CodingKeys: String, CodingKey {
            case models, defaults, schedulers, limits, features
            case defaultModel = "default_model"
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(models, forKey: .models)
            try c.encode(defaultModel, forKey: .defaultModel)
            try c.encode(defaults, forKey: .defaults)
            try c.encode(schedulers, forKey: .schedulers)
            try c.encode(limits, forKey: .limits)
            try c.encode(features, forKey: .features)
        }
    }

    @Sendable func capabilities(_ request: Request, context: DeciRequestContext) async throws -> Response {
        let h = service.health
        let pipeline = service.loadedPipeline()
        let defaults = pipeline.map { p in
            Capabilities.Defaults(steps: p.defaults.steps, guidanceScale: p.defaults.guidanceScale, guidanceRescale: p.defaults.guidanceRescale,
                                  width: p.defaults.width, height: p.defaults.height, sizeMultiple: p.imageSizeMultiple,
                                  scheduler: p.schedulerConfig.className)
        }
        let modes = pipeline.map { $0.isInpaintingModel ? ["inpaint"] : ["txt2img", "img2img", "inpaint"] } ?? ["txt2img", "img2img", "inpaint"]
        let limits = service.configuration.limits
        let body = Capabilities(
            models: h.models.map { .init(name: $0.name, loaded: $0.loaded, default: $0.name == h.defaultModel) },
            defaultModel: h.defaultModel, defaults: defaults, schedulers: SchedulerName.knownNames,
            limits: .init(maxPixels: limits.maxPixelsPerImage, maxBatch: limits.maxBatch, maxSteps: GenerationRequest.maxSteps,
                          queueSize: service.configuration.queueSize, maxBodyBytes: settings.maxBodyBytes),
            features: .init(modes: modes))
        return try json(body)
    }

    @Sendable func openAPI(_ request: Request, context: DeciRequestContext) async throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
    }
}

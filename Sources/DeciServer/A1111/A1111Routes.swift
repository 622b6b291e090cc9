// AUTOMATIC1111's web UI API (/sdapi/v1), for the tools that speak it (SillyTavern, Open WebUI,
// LibreChat, the webuiapi package, ...): txt2img / img2img answered synchronously with base64 PNGs
// and the infotext, progress with a preview, interrupt and skip, and the discovery endpoints those
// clients call on connect. Generation goes through the service's queue like every other job.
import DeciDiffusion
import DeciImage
import DeciSchedulers
import Foundation
import Hummingbird
import NIOCore

struct A1111Routes {
    let service: any JobQueue
    let state: A1111State
    let maxBodyBytes: Int

    func addRoutes(to router: Router<DeciRequestContext>) {
        let api = router.group("/sdapi/v1")
        api.post("/txt2img") { request, context in try await generate(request, context, img2img: false) }
        api.post("/img2img") { request, context in try await generate(request, context, img2img: true) }
        api.get("/progress", use: progress)
        api.post("/interrupt") { _, _ in state.interrupt(); return try json(JSONValue.object([:])) }
        api.post("/skip") { _, _ in state.skip(); return try json(JSONValue.null) }
        api.get("/options") { _, _ in try json(state.allOptions) }
        api.post("/options", use: setOptions)
        api.get("/sd-models", use: models)
        api.post("/refresh-checkpoints") { _, _ in try json(JSONValue.null) }
        api.get("/samplers", use: samplers)
        api.get("/schedulers", use: schedulers)
        api.get("/upscalers") { _, _ in
            try json([["name": JSONValue.string("None"), "model_name": .null, "model_path": .null, "model_url": .null, "scale": .number(4)]])
        }
        api.get("/latent-upscale-modes") { _, _ in try json([[String: String]]()) }
        api.get("/sd-vae") { _, _ in try json([[String: String]]()) }
        api.get("/loras") { _, _ in try json(loras()) }
        api.get("/embeddings") { _, _ in try json(["loaded": [String: String](), "skipped": [String: String]()]) }
        api.get("/scripts") { _, _ in try json(["txt2img": [String](), "img2img": [String]()]) }
        api.get("/cmd-flags", use: cmdFlags)
        api.post("/png-info", use: pngInfo)
    }

    func body(_ request: Request) async throws -> [String: JSONValue] {
        let bytes: ByteBuffer
        do { bytes = try await request.body.collect(upTo: maxBodyBytes) } catch is NIOTooManyBytesError {
            throw APIError.payloadTooLarge(limit: maxBodyBytes)
        }
        do { return try JSONValue.parseObject(bytes.readableBytesView) } catch { throw A1111Error(error) }
    }

    // MARK: - Generation

    @Sendable func generate(_ request: Request, _ context: DeciRequestContext, img2img: Bool) async throws -> Response {
        let plan: A1111Plan
        do { plan = try A1111Request.plan(try await body(request), img2img: img2img, state: state, service: service) } catch let e as FieldError {
            throw A1111Error(e)
        }
        // All of a call's images are queued together, so another call cannot slip in between them.
        var ids: [JobID] = []
        do {
            for spec in plan.specs { ids.append(try service.submit(spec).id) }
        } catch {
            for id in ids { _ = try? service.cancel(id) }
            throw A1111Error(error)
        }
        let call = state.begin(ids)
        defer { state.end(call) }
        // A client that gives up (SillyTavern, a timed-out script) leaves no work behind.
        let service = self.service
        let submitted = ids
        let watcher = ClientDisconnectWatcher(channel: context.channel) { for id in submitted { _ = try? service.cancel(id) } }
        defer { watcher.stop() }

        var finals: [JobSnapshot] = []
        for (i, id) in ids.enumerated() {
            state.update(call) { $0.index = i }
            let events: AsyncStream<JobEvent>
            do { events = try service.events(id) } catch { throw A1111Error(error) }
            var final: JobSnapshot?
            for await event in events {
                switch event {
                case let .progress(_, preview?): state.update(call) { $0.preview = preview.png }
                case let .succeeded(s), let .failed(s), let .cancelled(s): final = s
                default: break
                }
            }
            if let final { finals.append(final) }
            if call.interrupted { break }
        }
        if let failed = finals.first(where: { $0.status == .failed }), !finals.contains(where: { $0.imageCount > 0 }) {
            throw A1111Error(.internalServerError, kind: "RuntimeError", failed.error ?? "generation failed")
        }

        var images: [String] = [], infotexts: [String] = [], seeds: [UInt64] = []
        for snapshot in finals where snapshot.imageCount > 0 {
            guard let image = try? service.images(snapshot.id).first else { continue }
            let png = try finished(image, plan: plan)
            images.append(Data(png).base64EncodedString())
            infotexts.append(image.parameters.text)
            seeds.append(snapshot.seed)
        }
        let info = infoObject(plan, seeds: seeds, infotexts: infotexts)
        let infoText = String(decoding: try JSONEncoder.sorted.encode(info), as: UTF8.self)
        let response: [String: JSONValue] = [
            "images": .array(plan.sendImages ? images.map(JSONValue.string) : []),
            "parameters": .object(plan.echo),
            "info": .string(infoText),
        ]
        return try json(response)
    }

    /// The job's PNG, or for masked img2img the result laid over the original through the blurred
    /// mask (pasted back into place for "only masked"), with the same infotext.
    func finished(_ image: JobImage, plan: A1111Plan) throws -> [UInt8] {
        guard let overlay = plan.overlay else { return image.png }
        var generated = image.image
        var origin = (x: 0, y: 0)
        if let paste = overlay.paste {
            generated = try generated.resizedLanczos(width: paste.width, height: paste.height)
            origin = (paste.x, paste.y)
        }
        let composed = try A1111Inpainting.overlay(generated, onto: overlay.original, mask: overlay.mask, at: origin)
        return try ImageFile.encodePNG(composed, text: [PNGTextChunk(key: "parameters", value: image.parameters.text)])
    }

    /// Processed.js(): the `info` object A1111 returns as a JSON string.
    func infoObject(_ plan: A1111Plan, seeds: [UInt64], infotexts: [String]) -> [String: JSONValue] {
        let n = seeds.count
        let seedValues = seeds.map { JSONValue.number(Double($0)) }
        return [
            "prompt": .string(plan.prompt), "all_prompts": .array(Array(repeating: .string(plan.prompt), count: n)),
            "negative_prompt": .string(plan.negativePrompt),
            "all_negative_prompts": .array(Array(repeating: .string(plan.negativePrompt), count: n)),
            "seed": seedValues.first ?? .number(Double(plan.seeds.first ?? 0)), "all_seeds": .array(seedValues),
            "subseed": .number(-1), "all_subseeds": .array(Array(repeating: .number(-1), count: n)), "subseed_strength": .number(0),
            "width": .number(Double(plan.width)), "height": .number(Double(plan.height)),
            "sampler_name": .string(plan.sampler), "scheduler": .string(plan.schedule),
            "cfg_scale": .number(plan.cfgScale), "steps": .number(Double(plan.steps)),
            "batch_size": .number(Double(plan.batchSize)), "restore_faces": .bool(false), "face_restoration_model": .null,
            "sd_model_name": .string(plan.model), "sd_model_hash": .string(state.hash(for: plan.model)),
            "sd_vae_name": .null, "sd_vae_hash": .null, "seed_resize_from_w": .number(-1), "seed_resize_from_h": .number(-1),
            "denoising_strength": plan.denoisingStrength.map(JSONValue.number) ?? .null,
            "extra_generation_params": .object([:]), "index_of_first_image": .number(0),
            "infotexts": .array(infotexts.map(JSONValue.string)), "styles": .array([]),
            "job_timestamp": .string(ISO8601Timestamp.compact(Date())), "clip_skip": .number(Double(plan.clipSkip)),
            "is_using_inpainting_conditioning": .bool(service.loadedPipeline(plan.model)?.isInpaintingModel ?? false),
            "version": .string("decidiffusion"),
        ]
    }

    // MARK: - Progress and options

    @Sendable func progress(_ request: Request, context: DeciRequestContext) async throws -> Response {
        let p = state.progress()
        let skipImage = request.uri.queryParameters["skip_current_image"].map { $0 == "true" || $0 == "1" } ?? false
        let image: JSONValue = skipImage ? .null : p.preview.map { .string(Data($0).base64EncodedString()) } ?? .null
        let body: [String: JSONValue] = [
            "progress": .number(p.progress), "eta_relative": .number(p.etaRelative),
            "state": .object([
                "skipped": .bool(p.skipped), "interrupted": .bool(p.interrupted), "stopping_generation": .bool(false),
                "job": .string(p.job), "job_count": .number(Double(p.jobCount)), "job_timestamp": .string(p.timestamp),
                "job_no": .number(Double(p.jobNo)), "sampling_step": .number(Double(p.step)), "sampling_steps": .number(Double(p.steps)),
            ]),
            "current_image": image, "textinfo": .null,
        ]
        return try json(body)
    }

    @Sendable func setOptions(_ request: Request, context: DeciRequestContext) async throws -> Response {
        let new = try await body(request)
        do { try await state.setOptions(new) } catch { throw A1111Error(error) }
        return try json(JSONValue.null)
    }

    @Sendable func models(_ request: Request, context: DeciRequestContext) async throws -> Response {
        let list: [[String: JSONValue]] = service.catalog.names.map { name in
            let hash = state.hash(for: name)
            let folder = (try? service.catalog.entry(named: name).folder.path) ?? name
            return ["title": .string(state.title(for: name)), "model_name": .string(name), "hash": .string(hash),
                    "sha256": .null, "filename": .string(folder), "config": .null]
        }
        return try json(list)
    }

    @Sendable func samplers(_ request: Request, context: DeciRequestContext) async throws -> Response {
        let list: [[String: JSONValue]] = A1111Samplers.samplers.map { s in
            var options: [String: JSONValue] = [:]
            if s.automatic != "uniform" { options["scheduler"] = .string(s.automatic) }
            return ["name": .string(s.name), "aliases": .array(s.aliases.map(JSONValue.string)), "options": .object(options)]
        }
        return try json(list)
    }

    @Sendable func schedulers(_ request: Request, context: DeciRequestContext) async throws -> Response {
        let list: [[String: JSONValue]] = A1111Samplers.schedules.map { s in
            ["name": .string(s.name), "label": .string(s.label), "aliases": .array(s.aliases.map(JSONValue.string)),
             "default_rho": .number(s.defaultRho), "need_inner_model": .bool(false)]
        }
        return try json(list)
    }

    /// The LoRA folder's files, as A1111's Lora extension lists them.
    func loras() -> [[String: JSONValue]] {
        guard let dir = service.configuration.loraDirectory,
              let files = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return [] }
        return files.filter { $0.hasSuffix(".safetensors") }.sorted().map { file in
            let name = String(file.dropLast(".safetensors".count))
            return ["name": .string(name), "alias": .string(name), "path": .string(dir.appendingPathComponent(file).path), "metadata": .object([:])]
        }
    }

    @Sendable func cmdFlags(_ request: Request, context: DeciRequestContext) async throws -> Response {
        try json(["api": JSONValue.bool(true), "nowebui": .bool(false), "listen": .bool(false), "api_auth": .null,
                  "ckpt_dir": .null, "lora_dir": service.configuration.loraDirectory.map { .string($0.path) } ?? .null, "embeddings_dir": .null, "no_half": .bool(true)])
    }

    /// The infotext of a posted PNG (`{"image": base64}`), parsed as A1111 does.
    @Sendable func pngInfo(_ request: Request, context: DeciRequestContext) async throws -> Response {
        let f = JSONFields(object: try await body(request))
        let decoded: DecodedImage
        do {
            guard let text = try f.string("image"), !text.isEmpty else { throw FieldError(field: "image", "required: a base64 PNG") }
            decoded = try A1111Request.decodeImage(text, field: "image")
        } catch let e as FieldError { throw A1111Error(e) }
        let info = decoded.text("parameters") ?? ""
        var items: [String: JSONValue] = [:]
        for chunk in decoded.textChunks { items[chunk.key] = .string(chunk.value) }
        var parameters: [String: JSONValue] = [:]
        if let p = GenerationParameters.parse(info) {
            parameters = ["Prompt": .string(p.prompt), "Negative prompt": .string(p.negativePrompt), "Steps": .number(Double(p.steps)),
                          "Sampler": .string(p.sampler), "CFG scale": .number(p.cfgScale), "Seed": .number(Double(p.seed)),
                          "Size-1": .number(Double(p.width)), "Size-2": .number(Double(p.height))]
            if let m = p.model { parameters["Model"] = .string(m) }
            for field in p.extra { parameters[field.key] = .string(field.value) }
        }
        return try json(["info": JSONValue.string(info), "items": .object(items), "parameters": .object(parameters)])
    }
}

enum ISO8601Timestamp {
    /// A1111's job_timestamp: YYYYmmddHHMMSS (UTC here).
    static func compact(_ date: Date) -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMddHHmmss"
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: date)
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }
}

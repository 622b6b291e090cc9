// The runner thread: takes the oldest waiting job, loads its model if needed, generates with a step
// callback that reports progress, renders previews and honours cancellation, and stores the result.
import DeciImage
import Foundation

extension GenerationService {
    func runLoop() {
        while true {
            lock.lock()
            while waiting.isEmpty && !stopping {
                // Wake now and then to drop expired results even when idle.
                _ = lock.wait(until: Date().addingTimeInterval(30))
                sweep(now: Date())
            }
            if stopping {
                runnerDone = true
                lock.broadcast()
                lock.unlock()
                return
            }
            let id = waiting.removeFirst()
            guard let record = jobs[id] else {
                lock.unlock()
                continue
            }
            record.status = .running
            record.started = Date()
            runningID = id
            record.emit(.started(record.snapshot(queuePosition: nil)))
            announcePositionsLocked()
            lock.unlock()

            let t0 = Date()
            run(record)
            lock.lock()
            runningID = nil
            recentJobSeconds.append(Date().timeIntervalSince(t0))
            if recentJobSeconds.count > 8 { recentJobSeconds.removeFirst() }
            finishLocked(record)
            lock.unlock()
        }
    }

    /// The pipeline of a model, loading it (and unloading the least recently used beyond the
    /// limit) when needed. Called on the runner thread, or by `preload` before jobs arrive.
    func pipeline(for entry: ModelCatalog.Entry) throws -> DiffusionPipeline {
        lock.lock()
        if let p = pipelines[entry.name] {
            loadOrder.removeAll { $0 == entry.name }
            loadOrder.append(entry.name)
            lock.unlock()
            return p
        }
        while pipelines.count >= max(1, configuration.maxLoadedModels), !loadOrder.isEmpty {
            pipelines[loadOrder.removeFirst()] = nil
        }
        loadingModel = entry.name
        lock.unlock()
        defer {
            lock.lock()
            loadingModel = nil
            lock.unlock()
        }
        let t0 = Date()
        let p: DiffusionPipeline
        do { p = try DiffusionPipeline(folder: entry.folder, precision: catalog.precision, variant: catalog.variant) } catch {
            throw CheckpointError("model \(entry.name): cannot load \(entry.folder.path): \(error)")
        }
        observer?.modelLoaded(name: entry.name, seconds: Date().timeIntervalSince(t0))
        lock.lock()
        pipelines[entry.name] = p
        loadOrder.append(entry.name)
        lock.unlock()
        return p
    }

    /// Runs one job to its end state (the caller emits the final event).
    func run(_ record: JobRecord) {
        let spec = record.spec
        let pipeline: DiffusionPipeline
        let resolved: ResolvedRequest
        var request = spec.request
        do {
            pipeline = try self.pipeline(for: catalog.entry(named: record.model))
            try switchLoRAs(of: pipeline, for: spec, request: &request)
            resolved = try pipeline.resolve(request, limits: configuration.limits)
        } catch {
            fail(record, error)
            return
        }
        lock.lock()
        record.resolved = resolved
        record.progress = JobProgress(step: 0, totalSteps: resolved.stepsToRun)
        lock.unlock()

        var lastElapsed = 0.0
        let previews = spec.preview
        let progress: (StepProgress) -> Bool = { [self] p in
            observer?.stepCompleted(seconds: p.elapsed - lastElapsed)
            lastElapsed = p.elapsed
            let mean = p.elapsed / Double(max(p.step, 1))
            let jp = JobProgress(step: p.step, totalSteps: p.totalSteps, secondsPerStep: mean,
                                 etaSeconds: mean * Double(p.totalSteps - p.step))
            // Rendered outside the lock: a decode preview takes as long as a VAE decode.
            let preview = self.preview(of: p, pipeline: pipeline, options: previews, output: resolved)
            lock.lock()
            defer { lock.unlock() }
            record.progress = jp
            record.emit(.progress(jp, preview: preview))
            return !record.cancelRequested
        }
        do {
            let result = try pipeline.generate(request, limits: configuration.limits, partialOnCancel: spec.keepPartialOnCancel,
                                               progress: progress)
            let images = try jobImages(result, pipeline: pipeline)
            lock.lock()
            record.images = images
            record.warnings = result.warnings
            record.timings = result.timings
            record.status = .succeeded
            lock.unlock()
        } catch let cancelled as GenerationCancelled {
            let partial = cancelled.partial.flatMap { try? jobImages($0, pipeline: pipeline) } ?? []
            lock.lock()
            record.images = partial
            record.partial = !partial.isEmpty
            record.timings = cancelled.partial?.timings
            record.status = .cancelled
            lock.unlock()
        } catch {
            fail(record, error)
        }
    }

    func fail(_ record: JobRecord, _ error: any Error) {
        lock.lock()
        record.error = String(describing: error)
        record.status = .failed
        lock.unlock()
    }

    /// Merges the LoRAs a job names (its list, and the `<lora:...>` tags of its first prompt, as
    /// A1111 takes them, removed from every prompt) into the loaded model, in place, when they
    /// differ from the ones it holds. Names are looked up in the LoRA folder only.
    func switchLoRAs(of pipeline: DiffusionPipeline, for spec: JobSpec, request: inout GenerationRequest) throws {
        var wanted = spec.loras
        if configuration.loraDirectory != nil {
            for (i, prompt) in request.prompts.enumerated() {
                let tags = try LoRAReference.extractTags(from: prompt)
                request.prompts[i] = tags.prompt
                if i == 0 { wanted += tags.loras }
            }
        }
        for r in wanted where r.name.contains("/") || r.name.hasPrefix(".") || r.name.isEmpty {
            throw RequestError("loras: \"\(r.name)\" is not a LoRA name (a file name in the server's LoRA folder, without .safetensors)")
        }
        guard wanted != pipeline.loraReferences else { return }
        guard let directory = configuration.loraDirectory, !wanted.isEmpty || !pipeline.loraReferences.isEmpty else {
            if !wanted.isEmpty { throw RequestError("loras: this server has no LoRA folder (decidiffusion serve --lora-dir)") }
            return
        }
        try pipeline.setLoRAs(try LoRAReference.load(wanted, directory: directory, lenient: false), references: wanted)
    }

    func jobImages(_ result: GenerationResult, pipeline: DiffusionPipeline) throws -> [JobImage] {
        try result.images.indices.map { i in
            JobImage(image: result.images[i], png: try result.pngData(forImage: i, model: pipeline.modelName),
                     parameters: result.parameters(forImage: i, model: pipeline.modelName))
        }
    }

    /// The preview a step owes, if any: a full decode every `decodeEvery` steps, else the cheap
    /// latent map every `every` steps. A preview that fails to render is skipped, never fatal.
    func preview(of p: StepProgress, pipeline: DiffusionPipeline, options: PreviewOptions, output: ResolvedRequest) -> JobPreview? {
        let images: [RGBImage]
        let kind: JobPreview.Kind
        if options.decodeEvery > 0 && p.step % options.decodeEvery == 0 {
            guard let decoded = try? pipeline.decodePreview(p.preview) else { return nil }
            (images, kind) = (decoded, .decoded)
        } else if options.every > 0 && p.step % options.every == 0 {
            let size = options.upscale ? (width: output.width, height: output.height) : nil
            (images, kind) = (LatentPreview.rgb(p.preview, upscaledTo: size), .approximate)
        } else {
            return nil
        }
        guard let first = images.first, let png = try? ImageFile.encodePNG(first, compressionLevel: 1) else { return nil }
        return JobPreview(kind: kind, step: p.step, images: images, png: png)
    }
}

extension ResolvedRequest {
    /// Denoising steps a request runs: all of them for text-to-image, `int(steps * strength)` otherwise.
    public var stepsToRun: Int { mode == .textToImage ? steps : Int(Double(steps) * strength) }
}

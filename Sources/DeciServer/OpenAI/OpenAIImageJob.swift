// One OpenAI images request as one service job: submitted through the shared queue
// (SynchronousJob, so a client that disconnects cancels it and the client's retries never pile up
// work), then answered as one JSON response or as a stream of partial images and the final ones.
import DeciDiffusion
import DeciImage
import Foundation
import Hummingbird

struct OpenAIImageJob {
    enum Kind: String {
        case generation = "image_generation"
        case edit = "image_edit"
    }

    let service: any JobQueue
    let options: OpenAIImageOptions
    let request: GenerationRequest
    let kind: Kind

    /// The job: previews only when a stream asked for partial images, spread evenly over the
    /// denoising steps (the last step's preview would only repeat the final image). Upscaled
    /// latent previews cost next to nothing and come at the requested size, as OpenAI's do.
    var spec: JobSpec {
        var preview = PreviewOptions.none
        if options.stream && options.partialImages > 0 {
            let total = request.steps ?? service.loadedPipeline(options.model)?.defaults.steps ?? 20
            let run = request.initImage == nil ? total : Int(Double(total) * (request.strength ?? 1))
            preview = PreviewOptions(every: max(1, run / (options.partialImages + 1)), upscale: true)
        }
        return JobSpec(request: request, seed: options.seed, model: options.model, preview: preview,
                       keepPartialOnCancel: false)
    }

    // MARK: - One JSON answer

    func respond(context: DeciRequestContext, baseURL: String) async throws(APIError) -> Response {
        let final: JobSnapshot
        do { final = try await SynchronousJob.run(spec, service: service, context: context) } catch { throw APIError(openAI: error) }
        let images = try finishedImages(final)
        let data: [OpenAIImagesResponseJSON.Item]
        switch options.responseFormat {
        case .b64JSON:
            data = try images.map { (image) throws(APIError) in .init(b64JSON: try encoded(image)) }
        case .url:
            data = images.indices.map { .init(url: baseURL + JobRoutes.imagePath(final.id, index: $0)) }
        }
        let body = OpenAIImagesResponseJSON(created: Self.now, data: data, outputFormat: options.outputFormat.rawValue, size: Self.size(final))
        do { return try json(body) } catch { throw APIError(.internalServerError, code: "encoding_failed", "cannot encode the response: \(error)") }
    }

    // MARK: - A stream of events

    /// Submits before answering, so a refusal (queue full, bad value) is still a plain HTTP error;
    /// once the 200 is out, a failure is an `error` event.
    func stream(context: DeciRequestContext) throws(APIError) -> Response {
        let job: JobSnapshot
        let watcher: ClientDisconnectWatcher
        let events: AsyncStream<JobEvent>
        do {
            (job, watcher) = try SynchronousJob.start(spec, service: service, context: context)
            events = try service.events(job.id)
        } catch { throw APIError(openAI: error) }
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache", .init("X-Accel-Buffering")!: "no"]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            defer { watcher.stop() }
            var sent = 0
            for await event in events {
                let frames: [String]
                switch event {
                case let .progress(p, preview?) where sent < options.partialImages && p.step < p.totalSteps:
                    // A preview that cannot be encoded is skipped, as the service skips one it cannot render.
                    guard let b64 = try? encodedPreview(preview) else { continue }
                    frames = [OpenAIImageEvent.partial(kind.rawValue, index: sent, b64: b64, created: Self.now,
                                                       format: options.outputFormat.rawValue, size: Self.size(job, preview: preview)).frame]
                    sent += 1
                case let .succeeded(s), let .failed(s), let .cancelled(s):
                    frames = completedFrames(s)
                default:
                    continue
                }
                // A client that went away makes `write` throw; the watcher has cancelled the job by then.
                for frame in frames { try await writer.write(ByteBuffer(string: frame)) }
            }
            try await writer.finish(nil)
        })
    }

    // MARK: - Helpers

    /// One `completed` event per image of a finished job, or the `error` event that says why there are none.
    func completedFrames(_ job: JobSnapshot) -> [String] {
        do {
            let size = Self.size(job)
            return try finishedImages(job).map { (image) throws(APIError) in
                OpenAIImageEvent.completed(kind.rawValue, b64: try encoded(image), created: Self.now,
                                           format: options.outputFormat.rawValue, size: size).frame
            }
        } catch {
            return [OpenAIImageEvent.errorFrame(error)]
        }
    }

    /// The images of a finished job, or the error that explains why there are none.
    func finishedImages(_ job: JobSnapshot) throws(APIError) -> [JobImage] {
        switch job.status {
        case .succeeded:
            do { return try service.images(job.id) } catch { throw APIError(openAI: error) }
        case .failed:
            // The same request would fail the same way: a retry only costs another run.
            throw APIError(.internalServerError, code: "generation_failed", "generation failed: \(job.error ?? "unknown error")",
                           headers: [OpenAIErrors.shouldRetry: "false"])
        case .cancelled:
            throw APIError(.serviceUnavailable, code: "cancelled", "the job was cancelled before it finished (server shutdown or an explicit cancel)",
                           headers: [OpenAIErrors.shouldRetry: "false"])
        case .queued, .running:
            throw APIError(.internalServerError, code: "not_finished", "the job has not finished")
        }
    }

    /// An image in the requested format: the service's PNG (with its `parameters` chunk, the bytes
    /// the native API serves) or a JPEG at output_compression as quality.
    func encoded(_ image: JobImage) throws(APIError) -> String {
        switch options.outputFormat {
        case .png: return Data(image.png).base64EncodedString()
        case .jpeg: return try jpeg(image.image)
        }
    }

    func encodedPreview(_ preview: JobPreview) throws(APIError) -> String {
        switch options.outputFormat {
        case .png: return Data(preview.png).base64EncodedString()
        case .jpeg:
            guard let first = preview.images.first else { throw APIError(.internalServerError, code: "encoding_failed", "an empty preview") }
            return try jpeg(first)
        }
    }

    func jpeg(_ image: RGBImage) throws(APIError) -> String {
        // output_compression 0 is OpenAI's smallest file; libjpeg's lowest quality is 1.
        do { return Data(try ImageFile.encodeJPEG(image, quality: max(1, options.compression))).base64EncodedString() } catch {
            throw APIError(.internalServerError, code: "encoding_failed", "cannot encode the JPEG: \(error)")
        }
    }

    static var now: Int { Int(Date().timeIntervalSince1970) }

    static func size(_ job: JobSnapshot, preview: JobPreview? = nil) -> String {
        if let r = job.resolved { return "\(r.width)x\(r.height)" }
        if let first = preview?.images.first { return "\(first.width)x\(first.height)" }
        return "auto"
    }
}

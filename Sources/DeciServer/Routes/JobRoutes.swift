// The native job API: submit, poll, stream events, cancel, fetch images. Each handler is a thin
// view of one GenerationService call.
import DeciDiffusion
import Foundation
import Hummingbird
import NIOCore

struct JobRoutes {
    let service: any JobQueue
    let maxBodyBytes: Int

    static func jobPath(_ id: JobID) -> String { "/v1/jobs/\(id.rawValue)" }
    static func imagePath(_ id: JobID, index: Int) -> String { "/v1/jobs/\(id.rawValue)/images/\(index).png" }

    func addRoutes(to router: Router<DeciRequestContext>) {
        router.post("/v1/jobs", use: create)
        router.get("/v1/jobs/:id", use: get)
        router.get("/v1/jobs/:id/events", use: events)
        router.post("/v1/jobs/:id/cancel", use: cancel)
        router.delete("/v1/jobs/:id", use: cancel)
        router.get("/v1/jobs/:id/images/{index}.png", use: image)
    }

    // MARK: - Handlers

    @Sendable func create(_ request: Request, context: DeciRequestContext) async throws -> Response {
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: maxBodyBytes) } catch is NIOTooManyBytesError {
            throw APIError.payloadTooLarge(limit: maxBodyBytes)
        }
        let spec = try JobRequestBody.decode(body.readableBytesView).jobSpec()
        let snapshot: JobSnapshot
        do { snapshot = try service.submit(spec) } catch { throw APIError(error) }
        let created = JobCreatedJSON(snapshot)
        return try json(created, status: .accepted, headers: [.location: created.pollURL])
    }

    @Sendable func get(_ request: Request, context: DeciRequestContext) async throws -> Response {
        let id = try jobID(context)
        do { return try json(JobJSON(service.job(id))) } catch let e as ServiceError { throw APIError(e) }
    }

    @Sendable func cancel(_ request: Request, context: DeciRequestContext) async throws -> Response {
        let id = try jobID(context)
        var snapshot: JobSnapshot
        do { snapshot = try service.cancel(id) } catch { throw APIError(error) }
        // A running job stops after its current step: wait a little so the answer shows the final state.
        let deadline = ContinuousClock.now + .seconds(5)
        while snapshot.status == .running, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
            do { snapshot = try service.job(id) } catch { throw APIError(error) }
        }
        return try json(JobJSON(snapshot))
    }

    @Sendable func image(_ request: Request, context: DeciRequestContext) async throws -> Response {
        let id = try jobID(context)
        let text = context.parameters.get("index") ?? ""
        guard let index = Int(text), index >= 0 else { throw APIError.notFound("image \"\(text)\": not an image index") }
        let png: [UInt8]
        do { png = try service.png(id, index: index) } catch { throw APIError(error) }
        return Response(status: .ok, headers: [.contentType: "image/png", .cacheControl: "private, max-age=3600"],
                        body: .init(byteBuffer: ByteBuffer(bytes: png)))
    }

    /// Server-Sent Events: the job's current state, then every change until its final event.
    @Sendable func events(_ request: Request, context: DeciRequestContext) async throws -> Response {
        let id = try jobID(context)
        let stream: AsyncStream<JobEvent>
        do { stream = try service.events(id) } catch { throw APIError(error) }
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache", .init("X-Accel-Buffering")!: "no"]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            // A client that goes away makes `write` throw; the stream is dropped and the job runs on.
            for await event in stream {
                try await writer.write(ByteBuffer(string: EventStream.frame(event)))
            }
            try await writer.finish(nil)
        })
    }

    // MARK: - Helpers

    func jobID(_ context: DeciRequestContext) throws -> JobID {
        guard let raw = context.parameters.get("id"), !raw.isEmpty else { throw APIError.notFound("no job id") }
        return JobID(rawValue: raw)
    }
}

/// A JSON response (sorted keys, so answers are stable to read and to diff).
func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    var headers = headers
    headers[.contentType] = "application/json"
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
}

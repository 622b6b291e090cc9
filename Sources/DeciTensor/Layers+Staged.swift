// Layers built from weights the caller writes straight into the op layer's staging buffer: the
// loader converts each checkpoint tensor once, into memory the op layer owns, and the layer packs
// its own copy from there, so model code never holds a raw weight pointer and no weight is copied
// one extra time.

/// Why a layer built from staged weights failed: the caller's `fill`, or the kernel setup.
public enum StagedLayerError<FillError: Error>: Error {
    case fill(FillError)
    case kernel(KernelError)
}

extension Conv2d {
    /// A conv layer whose `[out, in, k, k]` weight `fill` writes into the buffer it is given (its
    /// count is the weight's element count; contents undefined before). Otherwise as
    /// ``init(inChannels:outChannels:kernelSize:stride:padding:extraBottomRight:weight:bias:precision:)``.
    public static func staged<E: Error>(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                                        extraBottomRight: Int = 0, bias: [Float]?, precision: Precision,
                                        fill: (UnsafeMutableBufferPointer<Float>) throws(E) -> Void) throws(StagedLayerError<E>) -> Conv2d {
        if let bias, bias.count != outChannels { throw .kernel(KernelError("conv bias has \(bias.count) values, want \(outChannels)")) }
        let count = outChannels * inChannels * kernelSize * kernelSize
        return try withStagedWeights(parts: [count], bias: bias, fill: { (_, buffer) throws(E) in try fill(buffer) }) { (w, b) throws(KernelError) in
            try Conv2d(inChannels: inChannels, outChannels: outChannels, kernelSize: kernelSize, stride: stride, padding: padding,
                       extraBottomRight: extraBottomRight, weight: w, bias: b, precision: precision)
        }
    }
}

extension Linear {
    /// A linear layer whose `[out, in]` weight is written by `fill` in row blocks: `fill(i, buffer)`
    /// writes rows `partRows[0..<i].sum ..< partRows[0...i].sum` (e.g. the q, k and v projections
    /// of a fused matmul, one call each). `partRows` must sum to `outFeatures`.
    public static func staged<E: Error>(inFeatures: Int, outFeatures: Int, partRows: [Int], bias: [Float]?, precision: Precision,
                                        fill: (_ part: Int, UnsafeMutableBufferPointer<Float>) throws(E) -> Void) throws(StagedLayerError<E>) -> Linear {
        precondition(partRows.reduce(0, +) == outFeatures, "Linear.staged: parts \(partRows) do not sum to \(outFeatures) rows")
        if let bias, bias.count != outFeatures { throw .kernel(KernelError("linear bias has \(bias.count) values, want \(outFeatures)")) }
        return try withStagedWeights(parts: partRows.map { $0 * inFeatures }, bias: bias, fill: fill) { (w, b) throws(KernelError) in
            try Linear(inFeatures: inFeatures, outFeatures: outFeatures, weight: w, bias: b, precision: precision)
        }
    }
}

/// Fills consecutive parts of the staging buffer, then builds the layer from it and `bias`.
private func withStagedWeights<L, E: Error>(parts: [Int], bias: [Float]?,
                                            fill: (Int, UnsafeMutableBufferPointer<Float>) throws(E) -> Void,
                                            build: (UnsafePointer<Float>, UnsafePointer<Float>?) throws(KernelError) -> L) throws(StagedLayerError<E>) -> L {
    do throws(StagingBuffer.Failure<StagedLayerError<E>>) {
        return try StagingBuffer.withFloats(parts.reduce(0, +)) { (buffer) throws(StagedLayerError<E>) -> L in
            var offset = 0
            for (i, count) in parts.enumerated() {
                do throws(E) { try fill(i, UnsafeMutableBufferPointer(start: buffer + offset, count: count)) } catch { throw .fill(error) }
                offset += count
            }
            do throws(KernelError) {
                guard let bias else { return try build(UnsafePointer(buffer), nil) }
                return try bias.withUnsafeBufferPointer { (b) throws(KernelError) -> L in try build(UnsafePointer(buffer), b.baseAddress) }
            } catch { throw .kernel(error) }
        }
    } catch {
        switch error {
        case .outOfMemory(let bytes):
            throw .kernel(KernelError("out of memory allocating \(bytes) bytes of staging memory for a layer's weights"))
        case .body(let inner): throw inner
        }
    }
}

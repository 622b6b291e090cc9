import DeciTensor
import Foundation
import Testing

/// The ops models use instead of touching tensor memory, against naive index arithmetic.
@Suite("Layout, blend, element-wise and embedding ops")
struct ModelOpsTests {
    /// `[n, h, w, c]` whose element at (b, y, x, k) is `b * 1000 + y * 100 + x * 10 + k`.
    static func indexed(_ n: Int, _ h: Int, _ w: Int, _ c: Int) -> Tensor {
        var v: [Float] = []
        for b in 0..<n { for y in 0..<h { for x in 0..<w { for k in 0..<c { v.append(Float(b * 1000 + y * 100 + x * 10 + k)) } } } }
        return Tensor(shape: [n, h, w, c], data: v)
    }

    static func ramp(_ shape: [Int], scale: Float = 0.37, offset: Float = -1.5) -> Tensor {
        Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { (i: Int) -> Float in Float(i) * scale + offset })
    }

    @Test func cropCopiesTheWindow() {
        let t = Self.indexed(2, 5, 6, 3)
        let c = Ops.crop(t, y: 1, x: 2, height: 3, width: 4)
        #expect(c.shape == [2, 3, 4, 3])
        let v = c.toArray()
        var i = 0
        for b in 0..<2 { for y in 0..<3 { for x in 0..<4 { for k in 0..<3 {
            #expect(v[i] == Float(b * 1000 + (y + 1) * 100 + (x + 2) * 10 + k))
            i += 1
        } } } }
    }

    @Test func assembleUndoesCrops() {
        let t = Self.indexed(2, 5, 7, 2)
        let grid = [[Ops.crop(t, y: 0, x: 0, height: 3, width: 4), Ops.crop(t, y: 0, x: 4, height: 3, width: 3)],
                    [Ops.crop(t, y: 3, x: 0, height: 2, width: 4), Ops.crop(t, y: 3, x: 4, height: 2, width: 3)]]
        let a = Ops.assemble(grid)
        #expect(a.shape == t.shape)
        #expect(a.toArray() == t.toArray())
    }

    @Test func blendsFadeAcrossTheOverlap() {
        let a = Self.ramp([1, 4, 3, 2]), b0 = Self.ramp([1, 3, 3, 2], scale: -0.11, offset: 2)
        let b = b0.copy()
        Ops.blendVertical(top: a, into: b, extent: 2)
        let (av, bv, out) = (a.toArray(), b0.toArray(), b.toArray())
        for y in 0..<3 { for x in 0..<3 { for k in 0..<2 {
            let i = (y * 3 + x) * 2 + k
            let want: Float = y < 2 ? av[((4 - 2 + y) * 3 + x) * 2 + k] * Float(1 - Double(y) / 2) + bv[i] * Float(Double(y) / 2) : bv[i]
            #expect(out[i] == want)
        } } }

        let l = Self.ramp([2, 2, 5, 3]), r0 = Self.ramp([2, 2, 4, 3], scale: 0.05, offset: 1)
        let r = r0.copy()
        Ops.blendHorizontal(left: l, into: r, extent: 3)
        let (lv, rv, hout) = (l.toArray(), r0.toArray(), r.toArray())
        for row in 0..<4 { for x in 0..<4 { for k in 0..<3 {
            let i = (row * 4 + x) * 3 + k
            let t = Double(x) / 3
            let want: Float = x < 3 ? lv[(row * 5 + 5 - 3 + x) * 3 + k] * Float(1 - t) + rv[i] * Float(t) : rv[i]
            #expect(hout[i] == want)
        } } }
    }

    @Test func gathersAndBatchConcat() {
        let table = Self.ramp([5, 3])
        #expect(Ops.gatherRows(table, [4, 0, 4]).toArray() == Array(table.toArray()[12..<15] + table.toArray()[0..<3] + table.toArray()[12..<15]))
        let x = Self.indexed(3, 2, 2, 2)
        let g = Ops.gatherBatch(x, [2, 2, 0])
        #expect(g.shape == [3, 2, 2, 2])
        let v = x.toArray()
        #expect(g.toArray() == Array(v[16..<24] + v[16..<24] + v[0..<8]))
        let c = Ops.concatBatch([Ops.gatherBatch(x, [0]), Ops.gatherBatch(x, [1, 2])])
        #expect(c.shape == x.shape && c.toArray() == v)
    }

    @Test func elementwiseFormulas() {
        let x = Self.ramp([2, 3, 4])
        let v = x.toArray()
        #expect(Ops.affine(x, subtracting: 0.25, multipliedBy: 0.18215).toArray() == v.map { ($0 - 0.25) * 0.18215 })
        #expect(Ops.affine(x, dividedBy: 0.18215, adding: 0.1).toArray() == v.map { $0 / 0.18215 + 0.1 })
        let pos = Self.ramp([3, 4], scale: 0.5, offset: 0.125)
        let p = pos.toArray()
        let want: [Float] = (0..<v.count).map { (i: Int) -> Float in v[i] + p[i % 12] }
        #expect(Ops.addRepeating(x, pos).toArray() == want)
    }

    @Test func diagonalGaussianSplitsAndSamples() {
        var m: [Float] = []
        let logvars: [Float] = [-40, -1, 3, 25]
        for r in 0..<6 {
            for k in 0..<4 { m.append(Float(r) - Float(k) * 0.5) }
            for k in 0..<4 { m.append(logvars[k] + Float(r)) }
        }
        let moments = Tensor(shape: [1, 2, 3, 8], data: m)
        let g = Ops.diagonalGaussian(moments)
        #expect(g.mean.shape == [1, 2, 3, 4])
        let (mean, logvar, std) = (g.mean.toArray(), g.logvar.toArray(), g.std.toArray())
        for r in 0..<6 { for k in 0..<4 {
            let lv = min(max(m[r * 8 + 4 + k], -30), 20)
            #expect(mean[r * 4 + k] == m[r * 8 + k])
            #expect(logvar[r * 4 + k] == lv)
            #expect(std[r * 4 + k] == Foundation.exp(0.5 * lv))
        } }
        let noise = Self.ramp([1, 2, 3, 4], scale: 0.1, offset: -1)
        let z = noise.toArray()
        let sample: [Float] = (0..<24).map { (i: Int) -> Float in mean[i] + std[i] * z[i] }
        #expect(Ops.gaussianSample(mean: g.mean, std: g.std, noise: noise).toArray() == sample)
    }

    /// diffusers `get_timestep_embedding(t, 8, flip_sin_to_cos=True, downscale_freq_shift=0)` for
    /// t = 0 and 999, computed in float32 by the formula it documents.
    @Test(arguments: [false, true])
    func timestepEmbedding(flip: Bool) {
        let e = Ops.timestepEmbedding([0, 999], channels: 8, flipSinToCos: flip, freqShift: 1)
        #expect(e.shape == [2, 8])
        let v = e.toArray()
        for (b, t) in [Float(0), 999].enumerated() {
            for i in 0..<4 {
                let f = Foundation.exp(-Float(log(10000.0)) * Float(i) / (Float(4) - 1))
                let (s, c) = (Foundation.sin(t * f), Foundation.cos(t * f))
                #expect(v[b * 8 + i] == (flip ? c : s))
                #expect(v[b * 8 + 4 + i] == (flip ? s : c))
            }
        }
        #expect(v[0] == (flip ? 1 : 0))
    }

    @Test func stagedLayersMatchArrayLayers() throws {
        let w: [Float] = (0..<24).map { (i: Int) -> Float in Float(i % 7) * 0.1 - 0.3 }
        let bias: [Float] = [0.5, -0.25, 0, 1, 2, -1]
        let x = Self.ramp([3, 4], scale: 0.2, offset: -0.4)
        let plain = try Linear(inFeatures: 4, outFeatures: 6, weight: w, bias: bias, precision: .f32)
        var calls: [Int] = []
        let staged = try Linear.staged(inFeatures: 4, outFeatures: 6, partRows: [2, 4], bias: bias, precision: .f32) { (part, buffer) throws(KernelError) in
            calls.append(part)
            let start = part == 0 ? 0 : 8
            for i in 0..<buffer.count { buffer[i] = w[start + i] }
        }
        #expect(calls == [0, 1])
        #expect(staged(x).toArray() == plain(x).toArray())

        let cw: [Float] = (0..<54).map { (i: Int) -> Float in Float(i % 5) * 0.2 - 0.4 }
        let img = Self.ramp([1, 4, 4, 3], scale: 0.03, offset: -0.5)
        let conv = try Conv2d(inChannels: 3, outChannels: 2, kernelSize: 3, padding: 1, weight: cw, bias: nil, precision: .f32)
        let sconv = try Conv2d.staged(inChannels: 3, outChannels: 2, kernelSize: 3, padding: 1, bias: nil, precision: .f32) { (buffer) throws(KernelError) in
            for i in 0..<buffer.count { buffer[i] = cw[i] }
        }
        #expect(sconv(img).toArray() == conv(img).toArray())

        let failing = Result { () throws(StagedLayerError<KernelError>) -> Conv2d in
            try Conv2d.staged(inChannels: 3, outChannels: 2, kernelSize: 3, bias: nil, precision: .f32) { (_) throws(KernelError) in
                throw KernelError("no data")
            }
        }
        guard case .failure(.fill(let e)) = failing else { Issue.record("fill error not passed through"); return }
        #expect(e.description == "no data")
    }

    @Test func tensorFilledByAClosure() {
        let t = Tensor(shape: [2, 3]) { (b: UnsafeMutableBufferPointer<Float>) in for i in 0..<b.count { b[i] = Float(i) } }
        #expect(t.toArray() == [0, 1, 2, 3, 4, 5])
    }
}

// Copies that rearrange whole tensors: spatial crops and the grid they are stitched back into
// (the VAE's tiled passes), rows gathered by index (embedding lookups, batch repeats) and batch
// concatenation. Pure data movement, so every backend gives bit-identical results.

extension Ops {
    /// A copy of the spatial crop `x[:, y ..< y + height, x ..< x + width, :]` of NHWC `t`.
    public static func crop(_ t: Tensor, y: Int, x: Int, height: Int, width: Int) -> Tensor {
        precondition(t.rank == 4, "crop needs NHWC, got \(t.shape)")
        let (n, h, w, c) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3])
        precondition(y >= 0 && x >= 0 && height >= 0 && width >= 0 && y + height <= h && x + width <= w,
                     "crop \(height)x\(width) at (\(y), \(x)) outside \(t.shape)")
        let out = Tensor(shape: [n, height, width, c])
        if Fault.skips("crop", t, out) { return out }
        for b in 0..<n {
            for r in 0..<height {
                out.pointer.advanced(by: ((b * height + r) * width) * c)
                    .update(from: t.pointer.advanced(by: ((b * h + y + r) * w + x) * c), count: width * c)
            }
        }
        return out
    }

    /// Stitches a grid of NHWC tiles into one tensor: `grid[i][j]` lands right of `grid[i][j - 1]`
    /// and below `grid[i - 1][j]`. Tiles of a row share a height, tiles of a column a width.
    public static func assemble(_ grid: [[Tensor]]) -> Tensor {
        guard let first = grid.first?.first else { preconditionFailure("assemble: no tiles") }
        let (n, c) = (first.shape[0], first.shape[3])
        let height = grid.reduce(0) { $0 + $1[0].shape[1] }
        let width = grid[0].reduce(0) { $0 + $1.shape[2] }
        let out = Tensor(shape: [n, height, width, c])
        if Fault.skips("assemble", out) || grid.contains(where: { row in row.contains { Fault.skips("assemble", $0) } }) { return out }
        var y0 = 0
        for row in grid {
            var x0 = 0
            for tile in row {
                let (th, tw) = (tile.shape[1], tile.shape[2])
                precondition(tile.rank == 4 && tile.shape[0] == n && tile.shape[3] == c && th == row[0].shape[1]
                             && x0 + tw <= width, "assemble: tile \(tile.shape) does not fit the grid")
                for b in 0..<n {
                    for r in 0..<th {
                        out.pointer.advanced(by: ((b * height + y0 + r) * width + x0) * c)
                            .update(from: tile.pointer.advanced(by: ((b * th + r) * tw) * c), count: tw * c)
                    }
                }
                x0 += tw
            }
            y0 += row[0].shape[1]
        }
        return out
    }

    /// Rows `indices` of `table` viewed as a `[rows, channels]` matrix, stacked into
    /// `[indices.count, channels]` (an embedding lookup).
    public static func gatherRows(_ table: Tensor, _ indices: [Int]) -> Tensor {
        let c = table.channels, rows = table.rows
        let out = Tensor(shape: [indices.count, c])
        for r in indices { precondition(r >= 0 && r < rows, "gatherRows: row \(r) outside 0..<\(rows)") }
        if Fault.skips("gatherRows", table, out) { return out }
        for (i, r) in indices.enumerated() {
            (out.pointer + i * c).update(from: table.pointer + r * c, count: c)
        }
        return out
    }

    /// Batch elements (axis 0) `indices` of `x`, in that order: a slice, a split or a repeat.
    public static func gatherBatch(_ x: Tensor, _ indices: [Int]) -> Tensor {
        precondition(x.rank >= 1, "gatherBatch needs a batch axis, got \(x.shape)")
        let n = x.shape[0]
        let per = n == 0 ? 0 : x.count / n
        return gatherRows(x.reshaped([n, per]), indices).reshaped([indices.count] + x.shape.dropFirst())
    }

    /// Concatenates tensors of equal shape past axis 0 along axis 0.
    public static func concatBatch(_ parts: [Tensor]) -> Tensor {
        guard let first = parts.first else { preconditionFailure("concatBatch: no tensors") }
        let inner = Array(first.shape.dropFirst())
        let out = Tensor(shape: [parts.reduce(0) { $0 + $1.shape[0] }] + inner)
        for p in parts { precondition(Array(p.shape.dropFirst()) == inner, "concatBatch: \(p.shape) with \(first.shape)") }
        if Fault.skips("concatBatch", out) || parts.contains(where: { Fault.skips("concatBatch", $0) }) { return out }
        var offset = 0
        for p in parts {
            (out.pointer + offset).update(from: p.pointer, count: p.count)
            offset += p.count
        }
        return out
    }
}

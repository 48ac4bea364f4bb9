package org.trmedge.demo

import android.content.Context
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.util.AttributeSet
import android.view.View
import kotlin.math.min
import kotlin.math.sqrt

/** Draws a Sudoku grid: the puzzle's givens in black, the model's digits in blue. */
class SudokuGridView(context: Context, attrs: AttributeSet?) : View(context, attrs) {
    private var puzzle = ""
    private var answer = ""
    private val thin = Paint().apply { color = Color.GRAY; strokeWidth = 2f }
    private val thick = Paint().apply { color = Color.BLACK; strokeWidth = 6f }
    private val given = Paint(Paint.ANTI_ALIAS_FLAG).apply { color = Color.BLACK; textAlign = Paint.Align.CENTER }
    private val solved = Paint(given).apply { color = Color.rgb(25, 90, 200) }

    fun show(puzzle: String, answer: String) {
        this.puzzle = puzzle.filter { it.isDigit() || it == '.' }
        this.answer = answer
        invalidate()
    }

    override fun onMeasure(widthMeasureSpec: Int, heightMeasureSpec: Int) {
        val side = MeasureSpec.getSize(widthMeasureSpec)
        setMeasuredDimension(side, side)
    }

    override fun onDraw(canvas: Canvas) {
        val n = sqrt(puzzle.length.toDouble()).toInt().takeIf { it * it == puzzle.length } ?: 9
        val box = if (n == 6) 2 else sqrt(n.toDouble()).toInt()   // 6x6 boxes are 2 rows x 3 columns
        val cell = min(width, height) / n.toFloat()
        given.textSize = cell * 0.6f
        solved.textSize = cell * 0.6f
        for (i in 0..n) {
            val rowLine = if (i % box == 0) thick else thin
            val colLine = if (i % (n / box) == 0) thick else thin
            canvas.drawLine(0f, i * cell, n * cell, i * cell, rowLine)
            canvas.drawLine(i * cell, 0f, i * cell, n * cell, colLine)
        }
        for (k in 0 until min(n * n, puzzle.length)) {
            val isGiven = puzzle[k] in '1'..'9'
            val c = if (isGiven) puzzle[k] else answer.getOrNull(k) ?: continue
            if (c !in '1'..'9') continue
            val x = (k % n + 0.5f) * cell
            val y = (k / n + 0.5f) * cell - (given.descent() + given.ascent()) / 2
            canvas.drawText(c.toString(), x, y, if (isGiven) given else solved)
        }
    }
}

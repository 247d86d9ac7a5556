package engine

import (
	"slices"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// mappingLog writes one mapping's log lines: the engine's logger, with the mapping's name, source and target
// group added to each line. A child logger per mapping (zap's With) would keep its own encoder and a 1 KB buffer
// for the life of the mapping: 3 MB for 3,000 mappings, which mostly log nothing.
type mappingLog struct {
	log    *zap.Logger
	fields []zap.Field
}

func newMappingLog(log *zap.Logger, fields ...zap.Field) mappingLog {
	return mappingLog{log: log, fields: fields}
}

func (l mappingLog) Info(msg string, fields ...zap.Field)  { l.write(zapcore.InfoLevel, msg, fields) }
func (l mappingLog) Warn(msg string, fields ...zap.Field)  { l.write(zapcore.WarnLevel, msg, fields) }
func (l mappingLog) Error(msg string, fields ...zap.Field) { l.write(zapcore.ErrorLevel, msg, fields) }

// write writes the line, the mapping's fields first as With would, when the level is enabled.
func (l mappingLog) write(level zapcore.Level, msg string, fields []zap.Field) {
	if ce := l.log.Check(level, msg); ce != nil {
		ce.Write(append(slices.Clip(l.fields), fields...)...)
	}
}

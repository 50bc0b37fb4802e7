"""Home Assistant's MQTT discovery options for the entity kinds Layerwise announces, as JSON Schemas.

Written from HA's documentation (see SOURCES.md beside this file): the configuration variables of
https://www.home-assistant.io/integrations/sensor.mqtt/ and .../binary_sensor.mqtt/, the device and origin
maps of https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery, and the device classes of
.../integrations/sensor/#device-class and .../binary_sensor/#device-class. Full key names only (Layerwise
does not use the abbreviations).
"""

from __future__ import annotations

from typing import Any

AVAILABILITY = {"type": "object", "additionalProperties": False, "required": ["topic"],
                "properties": {"topic": {"type": "string"}, "payload_available": {"type": "string"},
                               "payload_not_available": {"type": "string"}, "value_template": {"type": "string"}}}
DEVICE = {
    "type": "object", "additionalProperties": False, "minProperties": 1,
    "anyOf": [{"required": ["identifiers"]}, {"required": ["connections"]}],
    "properties": {
        "configuration_url": {"type": "string"}, "connections": {"type": "array"},
        "hw_version": {"type": "string"}, "identifiers": {"anyOf": [{"type": "string"},
                                                                   {"type": "array", "items": {"type": "string"}}]},
        "manufacturer": {"type": "string"}, "model": {"type": "string"}, "model_id": {"type": "string"},
        "name": {"type": "string"}, "serial_number": {"type": "string"}, "suggested_area": {"type": "string"},
        "sw_version": {"type": "string"}, "via_device": {"type": "string"},
    },
}
ORIGIN = {"type": "object", "additionalProperties": False, "required": ["name"],
          "properties": {"name": {"type": "string"}, "sw_version": {"type": "string"},
                         "support_url": {"type": "string"}}}
COMMON: dict[str, Any] = {
    "availability": {"type": "array", "items": AVAILABILITY},
    "availability_mode": {"enum": ["all", "any", "latest"]},
    "availability_template": {"type": "string"},
    "availability_topic": {"type": "string"},
    "default_entity_id": {"type": "string"},
    "device": DEVICE,
    "enabled_by_default": {"type": "boolean"},
    "encoding": {"type": "string"},
    "entity_category": {"enum": ["config", "diagnostic"]},
    "entity_picture": {"type": "string"},
    "expire_after": {"type": "integer", "minimum": 0},
    "force_update": {"type": "boolean"},
    "icon": {"type": "string", "pattern": "^[a-z0-9-]+:[a-z0-9-]+$"},
    "json_attributes_template": {"type": "string"},
    "json_attributes_topic": {"type": "string"},
    "name": {"type": ["string", "null"]},
    "object_id": {"type": "string"},
    "origin": ORIGIN,
    "payload_available": {"type": "string"},
    "payload_not_available": {"type": "string"},
    "platform": {"const": "mqtt"},
    "qos": {"enum": [0, 1, 2]},
    "state_topic": {"type": "string", "minLength": 1},
    "unique_id": {"type": "string", "minLength": 1},
    "value_template": {"type": "string"},
}
SENSOR_DEVICE_CLASSES = [
    "absolute_humidity", "apparent_power", "aqi", "area", "atmospheric_pressure", "battery",
    "blood_glucose_concentration", "carbon_dioxide", "carbon_monoxide", "current", "data_rate", "data_size",
    "date", "distance", "duration", "energy", "energy_distance", "energy_storage", "enum", "frequency", "gas",
    "humidity", "illuminance", "irradiance", "moisture", "monetary", "nitrogen_dioxide", "nitrogen_monoxide",
    "nitrous_oxide", "ozone", "ph", "pm1", "pm10", "pm25", "power_factor", "power", "precipitation",
    "precipitation_intensity", "pressure", "reactive_energy", "reactive_power", "signal_strength",
    "sound_pressure", "speed", "sulphur_dioxide", "temperature", "timestamp", "volatile_organic_compounds",
    "volatile_organic_compounds_parts", "voltage", "volume", "volume_flow_rate", "volume_storage", "water",
    "weight", "wind_direction", "wind_speed",
]
BINARY_SENSOR_DEVICE_CLASSES = [
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door", "garage_door", "gas",
    "heat", "light", "lock", "moisture", "motion", "moving", "occupancy", "opening", "plug", "power",
    "presence", "problem", "running", "safety", "smoke", "sound", "tamper", "update", "vibration", "window",
]
WEIGHT_UNITS = ["g", "kg", "lb", "mg", "oz", "st", "µg"]

SENSOR: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["state_topic", "unique_id", "device"],
    "properties": {
        **COMMON,
        "device_class": {"enum": [*SENSOR_DEVICE_CLASSES, None]},
        "last_reset_value_template": {"type": "string"},
        "options": {"type": "array", "items": {"type": "string"}},
        "state_class": {"enum": ["measurement", "measurement_angle", "total", "total_increasing"]},
        "suggested_display_precision": {"type": "integer", "minimum": 0},
        "unit_of_measurement": {"type": ["string", "null"]},
    },
    "allOf": [
        # A weight carries a weight unit; a timestamp has neither a unit nor a state class.
        {"if": {"properties": {"device_class": {"const": "weight"}}, "required": ["device_class"]},
         "then": {"required": ["unit_of_measurement"], "properties": {"unit_of_measurement": {"enum": WEIGHT_UNITS}}}},
        {"if": {"properties": {"device_class": {"const": "timestamp"}}, "required": ["device_class"]},
         "then": {"not": {"anyOf": [{"required": ["unit_of_measurement"]}, {"required": ["state_class"]}]}}},
    ],
}
BINARY_SENSOR: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["state_topic", "unique_id", "device"],
    "properties": {
        **COMMON,
        "device_class": {"enum": [*BINARY_SENSOR_DEVICE_CLASSES, None]},
        "off_delay": {"type": "integer", "minimum": 0},
        "payload_off": {"type": "string"},
        "payload_on": {"type": "string"},
    },
}
SCHEMAS = {"sensor": SENSOR, "binary_sensor": BINARY_SENSOR}

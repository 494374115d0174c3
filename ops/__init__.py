"""Operations: the real servers (Mosquitto, InfluxDB) started and stopped, the broker's security
(accounts, ACL, TLS) generated, and the processes of ``streetlight up`` supervised."""
